import { LanekeeperError, systemClock, type Clock, type Logger } from "@lanekeeper/shared";
import { connect, type ConnectionOptions, type NatsConnection } from "nats";
import type { CoordinatorErrorCode } from "../error-codes.js";
import { NATS_OPEN_BACKOFF_MAX_MS, NATS_OPEN_BACKOFF_MIN_MS } from "../limits.js";

/** NATS could not be reached, or JetStream refused to open a bucket or stream. */
export class NatsUnavailableError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("NATS_UNAVAILABLE", message, options);
  }
}

/** nats.js error codes that mean "no answer now" rather than "never": a node down, a cluster electing leaders. */
const TRANSIENT_CODES = new Set(["TIMEOUT", "503", "CONNECTION_REFUSED", "CONNECTION_TIMEOUT", "DISCONNECT", "CONNECTION_CLOSED", "CONNECTION_DRAINING"]);
/** JetStream API errors of the same kind (10008: JetStream temporarily unavailable, 10118: stream offline). */
const TRANSIENT_API_CODES = new Set([10008, 10118]);
const TRANSIENT_MESSAGE = /timeout|no responders|temporarily unavailable|cluster not available|stream is offline|leader not (found|available)|connection refused/i;

/**
 * Whether a NATS or JetStream failure is worth retrying: no answer (a request timed out while a stream or the meta
 * leader is being elected after a node died), no responders, a refused or lost connection. Looks through the
 * `cause` chain, since the stores wrap NATS errors in their own. Authorization, permission and configuration errors
 * (a replica mismatch, a bad password) are not: retrying them only delays the message the operator needs.
 */
export function isTransientNatsError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 6; depth++) {
    // Already the final word of a retry loop (an inner step's): retrying it again would only stack the waits.
    if (e instanceof NatsUnavailableError) return false;
    const x = e as { code?: unknown; api_error?: { code?: number; err_code?: number }; message?: unknown; cause?: unknown };
    if (x.api_error !== undefined) {
      if (x.api_error.code === 503 || TRANSIENT_API_CODES.has(x.api_error.err_code ?? 0)) return true;
      return false;
    }
    if (typeof x.code === "string" && TRANSIENT_CODES.has(x.code)) return true;
    if (typeof x.code === "string" && /AUTHORIZATION|AUTHENTICATION|PERMISSIONS/.test(x.code)) return false;
    if (e instanceof LanekeeperError && x.cause === undefined) return false;
    if (x.cause === undefined && typeof x.message === "string" && TRANSIENT_MESSAGE.test(x.message)) return true;
    e = x.cause;
  }
  return false;
}

/** Options of {@link NatsOpening}. */
export interface NatsOpeningOptions {
  /** The servers of the policy, named in the log and the final error. */
  readonly servers: readonly string[];
  /** How long the whole opening may retry, from construction. */
  readonly waitMs: number;
  readonly log?: Logger;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Waits between attempts (tests). @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Opening the coordinator's NATS side through a node loss or a cluster restart: each step (connect, JetStream
 * account, every bucket and stream) is retried with exponential backoff while it fails with a transient error
 * ({@link isTransientNatsError}), all steps sharing one deadline. After a node of a 3-node cluster dies, JetStream
 * requests go unanswered for about 10 s while the streams and the meta leader it led are elected elsewhere: a
 * coordinator starting then must wait that out, not fail. Each retry is logged; past the deadline the step fails
 * with {@link NatsUnavailableError} saying what was tried, for how long, and what to check.
 */
export class NatsOpening {
  private readonly clock: Clock;
  private readonly until: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private attempts = 0;

  constructor(private readonly o: NatsOpeningOptions) {
    this.clock = o.clock ?? systemClock;
    this.until = this.clock.now() + Math.max(0, o.waitMs);
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Run `fn` until it succeeds, fails for good, or the opening's deadline passes. `what` reads after "cannot". */
  async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let delay = NATS_OPEN_BACKOFF_MIN_MS;
    const started = this.clock.now();
    for (let attempt = 1; ; attempt++) {
      this.attempts++;
      try {
        return await fn();
      } catch (err) {
        if (!isTransientNatsError(err)) throw err;
        const left = this.until - this.clock.now();
        const reason = describe(err);
        if (left <= delay) {
          throw new NatsUnavailableError(
            `cannot ${what} at ${this.o.servers.join(", ")}: no answer after ${attempt} attempt(s) over ${Math.round((this.clock.now() - started) / 1000)} s (last: ${reason}); ` +
              "check that the nats-server nodes are running and a majority of the JetStream cluster is up (docs/cluster.md, \"When NATS goes away\"), then run the command again",
            { cause: err },
          );
        }
        this.o.log?.warn({ step: what, attempt, retryInMs: delay, err: reason }, "NATS not answering yet; retrying");
        await this.sleep(delay);
        delay = Math.min(NATS_OPEN_BACKOFF_MAX_MS, delay * 2);
      }
    }
  }

  /**
   * Connect to any listed server: nats.js tries each of them once per attempt, and this retries the whole list
   * while every server refuses or times out (a cluster restarting). The connection then reconnects by itself for
   * as long as the process runs (`maxReconnectAttempts: -1` in the options).
   */
  connect(options: ConnectionOptions): Promise<NatsConnection> {
    return this.run("connect to NATS", () => connect({ ...options, waitOnFirstConnect: false }));
  }

  /** Attempts made so far, over every step. */
  get attemptCount(): number {
    return this.attempts;
  }
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: unknown };
  const inner = e.cause !== undefined && e.cause !== null ? (e.cause as { message?: unknown }).message : undefined;
  return String(typeof inner === "string" ? inner : typeof e.message === "string" ? e.message : (e.code ?? err));
}
