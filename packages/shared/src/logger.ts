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

/** Where a logger made here comes from: the unbound pino root and every binding the logger carries. */
interface Lineage {
  readonly root: Logger;
  readonly bindings: Readonly<Record<string, string>>;
}

// pino appends a child's bindings to its parent's serialized ones, so binding `component` again would write the
// key twice on every line (JSON parsers keep the last, log shippers do not agree). Each logger made here
// therefore remembers its unbound root, and a child is made from that root with the merged bindings.
const lineage = new WeakMap<Logger, Lineage>();

/**
 * The process's root logger, JSON lines with ISO timestamps and secret redaction, bound to `component`. Lines
 * carry no pid or hostname (the service manager adds its own).
 */
export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    level: opts.level ?? "info",
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...LOG_REDACT_PATHS], censor: REDACTED },
  };
  const root = opts.destination ? pino(options, opts.destination) : pino(options);
  const bindings = { component: opts.component };
  const log = root.child(bindings);
  lineage.set(log, { root, bindings });
  return log;
}

/**
 * A child logger for one component, optionally bound to a host and a lane. Its bindings replace the parent's
 * (each key appears once per line); keys it leaves out are inherited, and so is the parent's level. For a
 * logger not made by {@link createLogger} or this function it falls back to pino's own `child`.
 */
export function childLogger(log: Logger, bindings: { component: string; hostId?: string; laneId?: string }): Logger {
  const b: Record<string, string> = { component: bindings.component };
  if (bindings.hostId !== undefined) b.hostId = bindings.hostId;
  if (bindings.laneId !== undefined) b.laneId = bindings.laneId;
  const from = lineage.get(log);
  if (from === undefined) return log.child(b);
  const merged = { ...from.bindings, ...b };
  const child = from.root.child(merged, { level: log.level });
  lineage.set(child, { root: from.root, bindings: merged });
  return child;
}
