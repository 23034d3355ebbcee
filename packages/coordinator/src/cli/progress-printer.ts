import type { ApplyEvent } from "../apply/apply-events.js";
import type { CliIo } from "./cli-io.js";
import { formatDuration } from "./duration.js";

/** Options of {@link progressPrinter}. */
export interface ProgressOptions {
  /** JSON lines (`{"event": …}`) instead of text. */
  readonly json: boolean;
  /** Print nothing. */
  readonly quiet: boolean;
  /** Least time between two drain-wait lines of one lane that say the same thing. @default 5000 */
  readonly drainEveryMs?: number;
}

/**
 * Progress of `apply` and `lanes` on stderr (stdout stays for the result): a line when an action starts and
 * ends, and while a drain waits a line per lane with the elapsed time and what it waits for (again when that
 * changes, else at most every `drainEveryMs`). With `--json`, each event is one JSON line on stderr instead.
 */
export function progressPrinter(io: CliIo, opts: ProgressOptions): (e: ApplyEvent) => void {
  const lastDrain = new Map<string, { at: number; what: string }>();
  const every = opts.drainEveryMs ?? 5000;
  return (e) => {
    if (opts.quiet) return;
    if (opts.json) {
      io.err(`${JSON.stringify({ event: e })}\n`);
      return;
    }
    switch (e.type) {
      case "action-start":
        io.err(`→ ${e.kind} ${e.laneId} on ${e.hostId}\n`);
        return;
      case "drain-wait": {
        const prev = lastDrain.get(e.laneId);
        const now = io.now();
        if (prev !== undefined && prev.what === e.waitingFor && now - prev.at < every) return;
        lastDrain.set(e.laneId, { at: now, what: e.waitingFor });
        io.err(
          `  drain ${e.laneId} on ${e.hostId}: ${formatDuration(e.elapsedMs)} elapsed, waiting for ${e.waitingForText}; ` +
            `deadline in ${formatDuration(e.remainingMs)}\n`,
        );
        return;
      }
      case "action-end": {
        const o = e.outcome;
        const mark = o.status === "succeeded" ? "✓" : o.status === "skipped" ? "-" : "✗";
        const why = o.code === undefined ? "" : ` at ${o.failedStep ?? "?"}: ${o.code}${o.message === undefined ? "" : ` (${o.message})`}`;
        io.err(`${mark} ${o.kind} ${o.laneId} ${o.status} in ${formatDuration(o.elapsedMs)}${why}\n`);
        if (o.recovery !== undefined) io.err(`  recovery: ${o.recovery}\n`);
        return;
      }
      default:
        return;
    }
  };
}
