import type { Logger } from "pino";
import { CLOCK_SKEW_MS, MAX_RECENT_RESULTS, RejectReason, type Clock } from "@lanekeeper/shared";
import { REPLAY_JOURNAL_MAX_LINES, REPLAY_LAZY_FLUSH_MS as LAZY_FLUSH_MS, REPLAY_STATE_FORMAT_VERSION } from "./limits.js";
import { FileStateStore, isJournaled, type ReplayState, type StateStore } from "./state-store.js";

/** What the agent does when its replay state is missing or corrupt at start. */
export type StateLostPolicy =
  /** Accept only intents issued after process start + skew; persist the first accepted sequence (default). */
  | "floor"
  /** Refuse every intent with `STATE_LOST` until an operator re-initializes the state. */
  | "refuse";

/** Options of {@link ReplayStore.open}. */
export interface ReplayStoreOptions {
  /** The agent's host id (written into the state file and checked on load). */
  hostId: string;
  clock: Clock;
  /** @default CLOCK_SKEW_MS */
  skewMs?: number;
  /** When the agent process started; the floor is `processStartMs + skewMs`. @default clock.now() */
  processStartMs?: number;
  /** @default "floor" */
  onStateLost?: StateLostPolicy;
  /** @default MAX_RECENT_RESULTS */
  maxRecent?: number;
  /** Journal lines before a full snapshot. @default REPLAY_JOURNAL_MAX_LINES */
  journalMaxLines?: number;
  /** Alerts about lost or corrupt state go here. */
  log?: Logger;
}

/** How a verified intent relates to what the agent already accepted. */
export type ReplayCheck =
  /** New: the sequence is reserved in memory; await {@link ReplayStore.durable} before executing. */
  | { readonly kind: "fresh"; readonly reservation: Reservation }
  /**
   * The exact same intent (id and digest) was accepted before: answer with its signed result, which may still
   * be on its way (concurrent delivery). Resolves `undefined` when the intent was accepted before a restart and
   * its result was never recorded.
   */
  | { readonly kind: "duplicate"; readonly result: Promise<Uint8Array | undefined> }
  /** Refused: `REPLAY`, `SEQUENCE_TOO_LOW`, `BEFORE_FLOOR`, `STATE_LOST` or `FENCING_TOKEN_STALE`. */
  | { readonly kind: "reject"; readonly reason: RejectReason; readonly message: string };

interface Entry {
  readonly intentId: string;
  readonly digest: string;
  readonly seq: number;
  readonly expiresAt: number;
  result: Uint8Array | undefined;
  /** Resolves with the result (or undefined when the intent is abandoned) for concurrent duplicates. */
  readonly settled: Promise<Uint8Array | undefined>;
  settle: (r: Uint8Array | undefined) => void;
  done: boolean;
  /** Cached JSON of the entry; recomputed when the result arrives. */
  json: string | undefined;
}

/** A sequence reserved by {@link ReplayStore.check}; complete it with the signed result. */
export class Reservation {
  /** @internal */
  constructor(
    /** @internal */ readonly entry: Entry,
    /** @internal */ readonly generation: number,
  ) {}

  /** The reserved intent id. */
  get intentId(): string {
    return this.entry.intentId;
  }

  /** The reserved sequence. */
  get seq(): number {
    return this.entry.seq;
  }
}

interface Waiter {
  readonly generation: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The agent's replay protection: a persisted high-water mark of intent sequences and a cache of recent signed
 * results (security-cases "Persisting replay state across restarts").
 *
 * `check` is synchronous, so deliveries are ordered by arrival and two concurrent deliveries of one intent
 * cannot both be fresh. `durable` resolves once the reservation is on disk; the intake executes only after it
 * (at-most-once). Writes are group-committed: each write covers every change made before it started (journal
 * lines appended with one synchronized write, or a full atomic snapshot every few thousand lines), so under load one
 * flush covers many intents without weakening the write-before-execute rule.
 */
export class ReplayStore {
  private hwmValue: number;
  private fenceValue: number;
  private keysetVersionValue: number;
  private readonly recent = new Map<string, Entry>();
  private readonly skewMs: number;
  private readonly maxRecent: number;
  /** Intents must be issued after this instant (set when state was lost). */
  private floorMs: number | undefined;
  private refuseAll: boolean;
  private readonly lostReason: string | undefined;

  private generation = 0;
  private persistedGeneration = 0;
  /** Journal lines of changes not yet written. */
  private pendingLines: string[] = [];
  /** Journal lines written since the last snapshot. */
  private journalLines = 0;
  /** Set after a failed journal write (its lines are gone from memory): the next write is a full snapshot. */
  private needSnapshot = true;
  private writing = false;
  private waiters: Waiter[] = [];
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private lazyTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly store: StateStore,
    private readonly opts: Required<Pick<ReplayStoreOptions, "hostId" | "clock">> & ReplayStoreOptions,
    state: ReplayState | undefined,
    lost: string | undefined,
  ) {
    this.skewMs = opts.skewMs ?? CLOCK_SKEW_MS;
    this.maxRecent = opts.maxRecent ?? MAX_RECENT_RESULTS;
    this.hwmValue = state?.hwm ?? 0;
    this.fenceValue = state?.fence ?? 0;
    this.keysetVersionValue = state?.keysetVersion ?? 0;
    this.lostReason = lost;
    this.refuseAll = lost !== undefined && opts.onStateLost === "refuse";
    if (lost !== undefined && !this.refuseAll) {
      this.floorMs = (opts.processStartMs ?? opts.clock.now()) + this.skewMs;
    }
    const now = opts.clock.now();
    for (const e of state?.recent ?? []) {
      if (e.expiresAt < now) continue;
      const result = e.resultEnvelope === undefined ? undefined : new Uint8Array(Buffer.from(e.resultEnvelope, "base64"));
      const entry = makeEntry(e.intentId, e.digest, e.seq, e.expiresAt);
      entry.result = result;
      entry.done = true;
      entry.settle(result);
      this.recent.set(e.intentId, entry);
    }
  }

  /**
   * Load the state and build the store. Missing or corrupt state is logged as an alert and turns on the floor
   * rule (or refusal, per `onStateLost`); it never throws for bad content.
   */
  static async open(store: StateStore, opts: ReplayStoreOptions): Promise<ReplayStore> {
    const loaded = await store.load();
    let lost: string | undefined;
    let state: ReplayState | undefined;
    if (loaded.kind === "ok") state = loaded.state;
    else lost = loaded.kind === "missing" ? "replay state file is missing" : `replay state is corrupt: ${loaded.why}`;
    const rs = new ReplayStore(store, opts, state, lost);
    if (lost !== undefined) {
      opts.log?.error(
        {
          alert: "REPLAY_STATE_LOST",
          why: lost,
          policy: rs.refuseAll ? "refuse" : "floor",
          floorMs: rs.floorMs,
          path: store instanceof FileStateStore ? store.path : undefined,
        },
        rs.refuseAll
          ? "replay state lost: refusing every intent until an operator re-initializes the state"
          : "replay state lost: accepting only intents issued after process start + clock skew",
      );
    }
    return rs;
  }

  /** Highest sequence accepted so far (in memory; durable once the pending commit lands). */
  get hwm(): number {
    return this.hwmValue;
  }

  /** Highest coordinator fencing token seen on an accepted intent (0 before the first). */
  get fence(): number {
    return this.fenceValue;
  }

  /** Version of the trusted key set recorded in the state. */
  get keysetVersion(): number {
    return this.keysetVersionValue;
  }

  /** The floor (issued-at must be above it) while the state is recovering from loss; otherwise undefined. */
  get floor(): number | undefined {
    return this.floorMs;
  }

  /** Why the state was considered lost at start, if it was. */
  get stateLostReason(): string | undefined {
    return this.lostReason;
  }

  /**
   * Classify a verified intent. Synchronous on purpose: it runs in arrival order with no await between the
   * sequence check and the reservation.
   */
  check(intent: { intentId: string; digest: Buffer; sequence: number; issuedAtMs: number; expiresAtMs: number; fencingToken?: number }): ReplayCheck {
    if (this.closed) return { kind: "reject", reason: RejectReason.STATE_LOST, message: "agent is shutting down" };
    const digest = intent.digest.toString("hex");
    const known = this.recent.get(intent.intentId);
    if (known !== undefined) {
      if (known.digest === digest) return { kind: "duplicate", result: known.settled };
      return { kind: "reject", reason: RejectReason.REPLAY, message: "intent id already used with different content" };
    }
    if (this.refuseAll) {
      return {
        kind: "reject",
        reason: RejectReason.STATE_LOST,
        message: "replay state was lost; every intent is refused until an operator re-initializes the agent's state directory and restarts it",
      };
    }
    if (this.floorMs !== undefined && !(intent.issuedAtMs > this.floorMs)) {
      return {
        kind: "reject",
        reason: RejectReason.BEFORE_FLOOR,
        message: "replay state was lost; only intents issued after agent start + clock skew are accepted",
      };
    }
    // A coordinator that was superseded (paused past its lease while another took the lead) keeps its old token;
    // once this host has seen the new leader's, nothing from the old one runs here. Checked before the sequence,
    // which a superseded coordinator allocates from the shared store like everyone else.
    const token = intent.fencingToken ?? 0;
    if (token < this.fenceValue) {
      return {
        kind: "reject",
        reason: RejectReason.FENCING_TOKEN_STALE,
        message: `fencing token ${token} is below ${this.fenceValue}, the newest coordinator leader this host has seen; the sender was superseded`,
      };
    }
    if (!(intent.sequence > this.hwmValue)) {
      return {
        kind: "reject",
        reason: RejectReason.SEQUENCE_TOO_LOW,
        message: `sequence ${intent.sequence} is not above the high-water mark ${this.hwmValue}`,
      };
    }
    this.hwmValue = intent.sequence;
    if (token > this.fenceValue) {
      // Durable with the reservation below (same write), before the intent can run.
      this.fenceValue = token;
      this.pendingLines.push(`${JSON.stringify({ t: "f", f: token })}\n`);
    }
    const entry = makeEntry(intent.intentId, digest, intent.sequence, intent.expiresAtMs + this.skewMs);
    this.recent.set(intent.intentId, entry);
    this.pendingLines.push(`${JSON.stringify({ t: "r", i: entry.intentId, d: entry.digest, s: entry.seq, e: entry.expiresAt })}\n`);
    this.generation++;
    return { kind: "fresh", reservation: new Reservation(entry, this.generation) };
  }

  /**
   * Resolve once the reservation (and everything reserved before it) is durable. Rejects when the state cannot
   * be written; the intent must then not run.
   */
  durable(res: Reservation): Promise<void> {
    if (this.persistedGeneration >= res.generation) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ generation: res.generation, resolve, reject });
      this.kick();
    });
  }

  /**
   * Record the signed result of a reserved intent (also a rejection after reservation), answer concurrent
   * duplicates, and schedule a lazy write: losing a cached result in a crash is safe (a later duplicate is
   * then refused by the high-water mark instead of answered).
   */
  complete(res: Reservation, resultEnvelope: Uint8Array): void {
    const e = res.entry;
    if (e.done) return;
    e.done = true;
    e.result = resultEnvelope;
    e.json = undefined;
    e.settle(resultEnvelope);
    this.pendingLines.push(`${JSON.stringify({ t: "c", i: e.intentId, r: Buffer.from(resultEnvelope).toString("base64") })}\n`);
    this.generation++;
    // No flush of its own: it rides along with the next reservation's write, or a lazy flush shortly after.
    this.scheduleLazyFlush();
  }

  private scheduleLazyFlush(): void {
    if (this.lazyTimer !== undefined || this.closed) return;
    this.lazyTimer = setTimeout(() => {
      this.lazyTimer = undefined;
      this.kick();
    }, LAZY_FLUSH_MS);
    this.lazyTimer.unref();
  }

  /** Raise the high-water mark (a key set's `hwm_floor`, TUF fast-forward recovery) and persist it. */
  async raiseHwm(floor: number): Promise<void> {
    if (floor <= this.hwmValue) return;
    this.hwmValue = floor;
    this.pendingLines.push(`${JSON.stringify({ t: "h", s: floor })}\n`);
    await this.commitNow();
  }

  /** Record the version of the key set now trusted, durably. */
  async setKeysetVersion(version: number): Promise<void> {
    if (version === this.keysetVersionValue) return;
    this.keysetVersionValue = version;
    this.pendingLines.push(`${JSON.stringify({ t: "k", v: version })}\n`);
    await this.commitNow();
  }

  /** Persist everything now (used on shutdown and after key-set changes). */
  async flush(): Promise<void> {
    if (this.persistedGeneration >= this.generation && !this.writing && this.pendingLines.length === 0) return;
    await this.commitNow();
  }

  /** Refuse new intents, write what is pending, and stop. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.lazyTimer !== undefined) clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    await this.flush().catch(() => undefined);
    await this.idle;
  }

  private commitNow(): Promise<void> {
    this.generation++;
    const generation = this.generation;
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ generation, resolve, reject });
      this.kick();
    });
  }

  /** Start the writer loop if it is not running. */
  private kick(): void {
    if (this.writing) return;
    this.writing = true;
    this.idle = this.writeLoop();
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.persistedGeneration < this.generation) {
        const generation = this.generation;
        const lines = this.pendingLines;
        this.pendingLines = [];
        try {
          await this.write(lines);
        } catch (err) {
          // Fail the intents waiting on this write; they will not run. The lost lines force a full snapshot next.
          this.needSnapshot = true;
          this.persistedGeneration = generation;
          const failed = this.waiters.filter((w) => w.generation <= generation);
          this.waiters = this.waiters.filter((w) => w.generation > generation);
          for (const w of failed) w.reject(err);
          this.opts.log?.error({ alert: "REPLAY_STATE_WRITE_FAILED", err }, "cannot persist replay state");
          continue;
        }
        this.persistedGeneration = generation;
        const ready = this.waiters.filter((w) => w.generation <= generation);
        this.waiters = this.waiters.filter((w) => w.generation > generation);
        for (const w of ready) w.resolve();
      }
    } finally {
      this.writing = false;
    }
  }

  /**
   * Persist the changes in `lines`: appended to the journal with one synchronized write when the store has one and
   * the journal is short, otherwise as a full snapshot (temp file, fsync, rename, fsync dir) that empties it.
   */
  private async write(lines: string[]): Promise<void> {
    const store = this.store;
    if (isJournaled(store) && !this.needSnapshot && this.journalLines + lines.length <= (this.opts.journalMaxLines ?? REPLAY_JOURNAL_MAX_LINES)) {
      if (lines.length === 0) return;
      await store.appendJournal(lines.join(""));
      this.journalLines += lines.length;
      return;
    }
    const text = this.serialize();
    if (isJournaled(store)) await store.writeSnapshot(text);
    else await store.save(JSON.parse(text) as ReplayState);
    this.journalLines = 0;
    this.needSnapshot = false;
  }

  /** Serialize the state, pruning expired entries and capping the cache (oldest finished entries go first). */
  private serialize(): string {
    const now = this.opts.clock.now();
    for (const [id, e] of this.recent) {
      if (e.done && e.expiresAt < now) this.recent.delete(id);
    }
    if (this.recent.size > this.maxRecent) {
      let excess = this.recent.size - this.maxRecent;
      for (const [id, e] of this.recent) {
        if (excess <= 0) break;
        if (!e.done) continue;
        this.recent.delete(id);
        excess--;
      }
    }
    const parts: string[] = [];
    for (const e of this.recent.values()) {
      e.json ??= JSON.stringify({
        intentId: e.intentId,
        digest: e.digest,
        seq: e.seq,
        expiresAt: e.expiresAt,
        ...(e.result === undefined ? {} : { resultEnvelope: Buffer.from(e.result).toString("base64") }),
      });
      parts.push(e.json);
    }
    const head = JSON.stringify({
      formatVersion: REPLAY_STATE_FORMAT_VERSION,
      hostId: this.opts.hostId,
      hwm: this.hwmValue,
      keysetVersion: this.keysetVersionValue,
      ...(this.fenceValue > 0 ? { fence: this.fenceValue } : {}),
    });
    return `${head.slice(0, -1)},"recent":[${parts.join(",")}]}`;
  }
}

function makeEntry(intentId: string, digest: string, seq: number, expiresAt: number): Entry {
  let settle!: (r: Uint8Array | undefined) => void;
  const settled = new Promise<Uint8Array | undefined>((resolve) => {
    settle = resolve;
  });
  return { intentId, digest, seq, expiresAt, result: undefined, settled, settle, done: false, json: undefined };
}
