/**
 * The pino root logger and its per-component children (`{component, hostId, laneId}`). Secret fields are
 * redacted by path at any depth up to three levels; log intent digests, never intent bodies.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from "pino";
import { REDACTED, SECRET_FIELD_NAMES } from "./redact.js";

export type { Logger } from "pino";

/** Paths pino redacts: each secret field name at the top level and one to three levels down, plus auth headers. */
export const LOG_REDACT_PATHS: readonly string[] = Object.freeze([
  ...SECRET_FIELD_NAMES.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]),
  'headers["authorization"]',
  '*.headers["authorization"]',
  '*.*.headers["authorization"]',
  "headers.Authorization",
  "*.headers.Authorization",
  "*.*.headers.Authorization",
  "env.GITHUB_TOKEN",
  "env.ACTIONS_RUNNER_INPUT_JITCONFIG",
]);

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Component name of the root logger, e.g. `agent` or `coordinator`. */
  component: string;
  /** @default "info" */
  level?: LevelWithSilent;
  /** Where lines go. @default stdout */
  destination?: DestinationStream;
}

/** The process's root logger, JSON lines with ISO timestamps and secret redaction. */
export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    level: opts.level ?? "info",
    base: { component: opts.component },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...LOG_REDACT_PATHS], censor: REDACTED },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A child logger for one component, optionally bound to a host and a lane. */
export function childLogger(log: Logger, bindings: { component: string; hostId?: string; laneId?: string }): Logger {
  const b: Record<string, string> = { component: bindings.component };
  if (bindings.hostId !== undefined) b.hostId = bindings.hostId;
  if (bindings.laneId !== undefined) b.laneId = bindings.laneId;
  return log.child(b);
}
