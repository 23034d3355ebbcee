/**
 * What the agent knows about its NATS connection, for `lanekeeper-agent status` and the log: the state, the
 * server, since when, the newest problem and how many reconnects. nats.js reports connection changes through the
 * `status()` iterator but keeps the reasons of failed dial attempts to itself, so a failed reconnect attempt is
 * recorded as "cannot reach <server>" and the first connection is dialled by the agent itself (see
 * `agent-intake.ts`) so that its errors are seen.
 */
import { DebugEvents, Events, type Status } from "nats";
import type { Logger, NatsConnectionStatus } from "@lanekeeper/shared";

/** The connection states `status` shows. */
export type NatsState = "connecting" | "connected" | "reconnecting" | "disconnected" | "closed";

/** Failed attempts in a row between two warnings in the log (the rest go to debug). */
const WARN_EVERY_ATTEMPTS = 30;

/** A server URL without credentials (a `nats://user:pass@host` URL must not reach the status report or the log). */
export function displayServer(url: string): string {
  return url
    .split(",")
    .map((u) => u.trim().replace(/^([a-z]+:\/\/)?[^@/]*@/i, "$1"))
    .map((u) => (/^[a-z]+:\/\//i.test(u) ? u : `nats://${u}`))
    .join(",");
}

/** Tracks the connection; fed by the intake's connect loop and the connection's status events. */
export class NatsMonitor {
  private state: NatsState = "connecting";
  private server: string;
  private sinceMs: number;
  private lastError = "";
  private lastErrorAtMs = 0;
  private reconnects = 0;
  private failedAttempts = 0;

  constructor(
    configuredUrl: string,
    private readonly log: Logger,
    private readonly clock: { now(): number } = { now: () => Date.now() },
  ) {
    this.server = displayServer(configuredUrl);
    this.sinceMs = clock.now();
  }

  private enter(state: NatsState): void {
    if (state !== this.state) {
      this.state = state;
      this.sinceMs = this.clock.now();
    }
  }

  private problem(message: string): void {
    this.lastError = message;
    this.lastErrorAtMs = this.clock.now();
  }

  /** A first-connection attempt failed with `err` (the agent retries). */
  connectFailed(err: unknown): void {
    const why = err instanceof Error ? err.message : String(err);
    this.failedAttempts++;
    const changed = this.lastError !== `cannot connect to ${this.server}: ${why}`;
    this.problem(`cannot connect to ${this.server}: ${why}`);
    if (changed || this.failedAttempts % WARN_EVERY_ATTEMPTS === 1) {
      this.log.warn({ server: this.server, err: why, attempts: this.failedAttempts }, "cannot connect to NATS; retrying");
    } else this.log.debug({ server: this.server, err: why, attempts: this.failedAttempts }, "cannot connect to NATS; retrying");
  }

  /** The first connection is up. */
  connected(server?: string): void {
    if (server !== undefined && server !== "") this.server = displayServer(server);
    this.failedAttempts = 0;
    this.enter("connected");
    this.log.info({ server: this.server }, "NATS connected");
  }

  /** One event of the connection's `status()` iterator. */
  onStatus(s: Status): void {
    const server = typeof s.data === "string" && s.data !== "" ? displayServer(s.data) : this.server;
    switch (s.type) {
      case Events.Disconnect:
        this.server = server;
        this.failedAttempts = 0;
        this.problem(`lost the connection to ${server}`);
        this.enter("disconnected");
        this.log.warn({ server }, "NATS disconnected; reconnecting (intents and inventory wait)");
        break;
      case DebugEvents.Reconnecting:
        // An attempt after an earlier one in this outage means that one failed: nats.js keeps the reason.
        if (this.state === "reconnecting") {
          this.failedAttempts++;
          this.problem(`cannot reach ${this.server} (reconnect attempt ${this.failedAttempts} failed)`);
          const level = this.failedAttempts % WARN_EVERY_ATTEMPTS === 1 ? "warn" : "debug";
          this.log[level]({ server: this.server, attempts: this.failedAttempts }, "NATS still unreachable; retrying");
        }
        this.server = server;
        this.enter("reconnecting");
        break;
      case Events.Reconnect: {
        const downMs = this.clock.now() - this.sinceMs;
        this.server = server;
        this.reconnects++;
        this.failedAttempts = 0;
        this.enter("connected");
        this.log.info({ server, reconnects: this.reconnects, downMs }, "NATS reconnected");
        break;
      }
      case Events.Error: {
        const why = typeof s.data === "string" ? s.data : JSON.stringify(s.data);
        this.problem(`server error: ${why}`);
        this.log.warn({ server: this.server, err: why }, "NATS error");
        break;
      }
      case Events.LDM:
        this.log.info({ server }, "NATS server entering lame duck mode; the client moves to another server");
        break;
      default:
        break;
    }
  }

  /** The connection closed for good (`err` when not asked to). */
  closed(err?: unknown): void {
    if (err !== undefined && err !== null) {
      const why = err instanceof Error ? err.message : JSON.stringify(err);
      this.problem(`connection closed: ${why}`);
      this.log.error({ server: this.server, err: why }, "NATS connection closed");
    }
    this.enter("closed");
  }

  /** The state name (for the older `natsState` field). */
  get current(): NatsState {
    return this.state;
  }

  /** The status-report form. */
  snapshot(): NatsConnectionStatus {
    return {
      state: this.state,
      server: this.server,
      sinceMs: this.sinceMs,
      lastError: this.lastError,
      lastErrorAtMs: this.lastErrorAtMs,
      reconnects: this.reconnects,
    };
  }
}
