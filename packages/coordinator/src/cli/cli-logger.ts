import { appendFileSync } from "node:fs";
import { resolve } from "node:path";
import { createLogger, humanLogDestination, type Logger } from "@lanekeeper/shared";
import type { DestinationStream, LevelWithSilent } from "pino";
import type { CliIo } from "./cli-io.js";

/**
 * How a command's log lines are written when `LANEKEEPER_LOG_FILE` is not set: `human` (the interactive
 * commands: one readable line each on stderr, never a raw JSON line amid the command's own output) or `json`
 * (`serve`, a daemon whose service manager collects JSON lines from stderr).
 */
export type CliLogStyle = "human" | "json";

/** The program's name, left out of human log lines (every line is from it). */
const ROOT_COMPONENT = "lanekeeper";

/**
 * Appends JSON lines to `path` (created 0600). When the file cannot be written the lines go to `fallback` from
 * then on, after one line that says why: a log file is a convenience, never a reason to fail the command.
 */
function fileDestination(path: string, fallback: DestinationStream, io: CliIo): DestinationStream {
  let failed = false;
  return {
    write(line: string): void {
      if (!failed) {
        try {
          appendFileSync(path, line, { mode: 0o600 });
          return;
        } catch (err) {
          failed = true;
          io.err(`warn: cannot write the log file ${path} (${(err as NodeJS.ErrnoException).code ?? "failed"}); logging here instead\n`);
        }
      }
      fallback.write(line);
    },
  };
}

/**
 * The coordinator CLI's logger: pino at `LANEKEEPER_LOG_LEVEL` (default `warn`), secrets redacted. With
 * `LANEKEEPER_LOG_FILE` set, JSON lines are appended to that file (relative to the working directory) and stderr
 * carries no log line; otherwise they go to stderr in `style`.
 */
export function cliLogger(io: CliIo, style: CliLogStyle = "human"): Logger {
  const level = (io.env.LANEKEEPER_LOG_LEVEL ?? "warn") as LevelWithSilent;
  const stderr: DestinationStream =
    style === "json" ? { write: (s: string): void => io.err(s) } : humanLogDestination((s) => io.err(s), ROOT_COMPONENT);
  const file = io.env.LANEKEEPER_LOG_FILE;
  const destination = file === undefined || file === "" ? stderr : fileDestination(resolve(io.cwd, file), stderr, io);
  return createLogger({ component: ROOT_COMPONENT, level, destination });
}
