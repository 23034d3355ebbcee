import { createHash } from "node:crypto";
import type { Msg, NatsConnection, Subscription } from "nats";
import type { Logger } from "pino";
import {
  CLOCK_SKEW_MS,
  decodeEnvelope,
  decodeIntentPayload,
  INTENT_SUBJECT_PREFIX,
  intentSubject,
  isRejectError,
  KeyedMutex,
  KEYSET_KIND,
  KIND_HEADER,
  LanekeeperError,
  openSecret,
  sealContext,
  subjectToken,
  RejectError,
  RejectReason,
  ResultPayload,
  ResultStatus,
  signResult,
  systemClock,
  verifyIntent,
  type ActionKind,
  type Clock,
  type IntentPayload,
  type LaneObservation,
  type SealedSecret,
  type SealPurpose,
  type SealingKey,
  type SigningKey,
  type TrustedKeyStore,
} from "@lanekeeper/shared";
import {
  allowedWhileHeld,
  checkIntentAllowed,
  checkLaneAllowed,
  laneMatchesSpec,
  type IntakeControl,
} from "./intake-policy.js";
import type { ExecutionContext, IntentAction, LaneExecutor, LaneInspection } from "./lane-executor.js";
import { MAX_RESULT_MESSAGE_CHARS } from "./limits.js";
import type { Reservation, ReplayStore } from "./replay-store.js";

/** Intent id put into results for input whose intent id is unknown or unauthenticated (before signature). */
export const UNKNOWN_INTENT_ID = "0".repeat(32);

/** One intent's outcome, for the status service's recent intents and for the agent's audit log. */
export interface IntakeOutcome {
  readonly intentId: string;
  readonly digest: string;
  readonly sequence: number;
  /** The intent's action, `keyset` for a signed key-set update, `""` when unknown. */
  readonly action: ActionKind | typeof KEYSET_KIND | "";
  readonly laneId: string;
  readonly status: ResultStatus;
  readonly reasonCode: string;
  readonly atMs: number;
  /** Whether the executor ran the action. */
  readonly executed: boolean;
  /** A duplicate delivery answered from the cache. */
  readonly duplicate: boolean;
}

/** Where the intake reads its trusted keys: the agent's trust store, swapped on key-set updates. */
export interface KeySource {
  readonly keys: TrustedKeyStore;
}

/** Handles signed key-set updates arriving on the intent subject (see {@link AgentTrust}). */
export interface KeySetUpdateHandler {
  /** Verify and apply; resolves with the new version, or throws a `RejectError`. */
  applyKeySetUpdate(bytes: Uint8Array): Promise<{ version: number; hwmFloor: number }>;
}

/** Options of {@link Intake}. */
export interface IntakeOptions {
  /** This agent's host id. */
  hostId: string;
  /** The agent's Ed25519 identity key: signs every result. */
  identityKey: SigningKey;
  /** The agent's X25519 key: opens sealed secrets. */
  sealingKey: SealingKey;
  /** The trusted coordinator keys (read on every intent, so a key-set update applies at once). */
  trust: KeySource;
  replay: ReplayStore;
  executor: LaneExecutor;
  /** The local allowlist; a function so a config reload applies to the next intent. */
  control: IntakeControl | (() => IntakeControl);
  /** @default systemClock */
  clock?: Clock;
  /** @default CLOCK_SKEW_MS */
  skewMs?: number;
  /** @default MAX_INTENT_TTL_MS */
  maxTtlMs?: number;
  log?: Logger;
  /** Called after every intent that reached the replay step, and every key-set update (for audit and status). */
  onOutcome?: (o: IntakeOutcome) => void;
  /** Called after an action ran (the inventory publisher publishes on change). */
  onChange?: () => void;
  /** Handles key-set updates on the intent subject; without it they are refused. */
  keySetUpdates?: KeySetUpdateHandler;
}

interface ResultFields {
  intentId: string;
  digest: Buffer;
  sequence: number;
  status: ResultStatus;
  reasonCode: string;
  message: string;
  startedAtMs: number;
  observed?: LaneObservation | undefined;
}

/** Reasons raised after the signature verified: the payload is authentic, so its id may go into the result. */
const AUTHENTICATED_REASONS = new Set<string>([
  RejectReason.ISSUER_MISMATCH,
  RejectReason.AUDIENCE_MISMATCH,
  RejectReason.SUBJECT_MISMATCH,
  RejectReason.EXPIRED,
  RejectReason.NOT_YET_VALID,
  RejectReason.TTL_TOO_LONG,
  RejectReason.BAD_TIME_WINDOW,
]);

/**
 * The agent's intent intake on `lk.v1.intent.<hostId>`: the verification pipeline of DESIGN section 5 and
 * security-cases.md, answering every message with a signed `ResultPayload`.
 *
 * Order (each failure a typed {@link RejectReason} and a signed `REJECTED` result; no executor call of any
 * kind before the ownership step and no `execute` before the last):
 * 1–6 `verifyIntent` (size, envelope, trusted key, signature, strict decode, issuer/audience/subject, time) →
 * 7 replay (exact duplicate → cached result; sequence above the persisted high-water mark; floor after state
 * loss) → control enabled → allowlist and names → ownership and hold (under the lane's lock) → open sealed
 * secrets → replay reservation durable on disk → execute → signed result.
 *
 * Steps 1–7 run synchronously in arrival order, so two deliveries of one intent can never both pass replay.
 */
export class Intake {
  private readonly clock: Clock;
  private readonly skewMs: number;
  /** Lanes whose create passed the lane-count check and has not ended yet. */
  private readonly creating = new Set<string>();
  /** Intents on one lane run one after another (DESIGN section 5: per-lane serialized execution). */
  private readonly laneMutex = new KeyedMutex();
  private readonly inflight = new Set<Promise<unknown>>();
  /** Results ready to send, flushed together (see {@link respondSoon}). */
  private replies: { msg: Msg; reply: Uint8Array }[] = [];
  private repliesScheduled = false;
  private sub: Subscription | undefined;
  private closed = false;

  constructor(private readonly opts: IntakeOptions) {
    this.clock = opts.clock ?? systemClock;
    this.skewMs = opts.skewMs ?? CLOCK_SKEW_MS;
  }

  /** The host this intake serves. */
  get hostId(): string {
    return this.opts.hostId;
  }

  /**
   * Subscribe to `lk.v1.intent.<hostId>` and answer each request with the signed result. Messages without a
   * reply subject are still processed (they are signed intents), their result only logged.
   */
  listen(nc: NatsConnection): Subscription {
    if (this.sub !== undefined) throw new Error("intake is already listening");
    this.sub = nc.subscribe(intentSubject(this.opts.hostId), {
      callback: (err, msg) => {
        if (err !== null) {
          this.opts.log?.error({ err }, "intent subscription failed");
          return;
        }
        this.onMessage(msg);
      },
    });
    return this.sub;
  }

  private onMessage(msg: Msg): void {
    const kind = msg.headers?.get(KIND_HEADER) ?? "";
    const work = kind === KEYSET_KIND ? this.handleKeySetUpdate(msg.data) : this.handle(msg.subject, msg.data);
    const tracked = work.then(
      (reply) => {
        if (msg.reply === undefined || msg.reply === "") {
          this.opts.log?.warn({ subject: msg.subject }, "intent without a reply subject; result not sent");
          return;
        }
        this.respondSoon(msg, reply);
      },
      (err: unknown) => this.opts.log?.error({ err }, "intent handling failed unexpectedly"),
    );
    this.inflight.add(tracked);
    void tracked.finally(() => this.inflight.delete(tracked));
  }

  /**
   * Send a result at the end of this event-loop turn, with every other result that became ready in it: the
   * intents of one group commit finish together, and NATS then writes their replies to the socket in one go
   * instead of one write (and one wake-up of the server) each.
   */
  private respondSoon(msg: Msg, reply: Uint8Array): void {
    this.replies.push({ msg, reply });
    if (this.repliesScheduled) return;
    this.repliesScheduled = true;
    setImmediate(() => this.flushReplies());
  }

  private flushReplies(): void {
    const batch = this.replies;
    this.replies = [];
    this.repliesScheduled = false;
    for (const { msg, reply } of batch) {
      try {
        msg.respond(reply);
      } catch (err) {
        this.opts.log?.error({ err }, "cannot send an intent result");
      }
    }
  }

  /** Stop listening, wait for intents in progress, send their results, and flush the replay state. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sub !== undefined) {
      this.sub.unsubscribe();
      this.sub = undefined;
    }
    await Promise.allSettled([...this.inflight]);
    this.flushReplies();
    await this.opts.replay.flush().catch(() => undefined);
  }

  /**
   * Run one message through the pipeline and return the signed result envelope to send back. Never throws:
   * every failure becomes a signed result. Everything up to the replay reservation runs before the first
   * `await`.
   */
  handle(subject: string, bytes: Uint8Array): Promise<Uint8Array> {
    const startedAtMs = this.clock.now();
    if (this.closed) {
      return Promise.resolve(this.rejectUnverified(bytes, RejectReason.STATE_LOST, "agent is shutting down", startedAtMs));
    }
    const subjectHost = subjectToken(INTENT_SUBJECT_PREFIX, subject);
    let intent: IntentPayload;
    let digest: Buffer;
    try {
      const verifyCtx: Parameters<typeof verifyIntent>[1] = {
        hostId: this.opts.hostId,
        subjectHost,
        keys: this.opts.trust.keys,
        clock: this.clock,
        skewMs: this.skewMs,
      };
      if (this.opts.maxTtlMs !== undefined) verifyCtx.maxTtlMs = this.opts.maxTtlMs;
      ({ intent, digest } = verifyIntent(bytes, verifyCtx));
    } catch (err) {
      return Promise.resolve(this.rejectVerification(bytes, err, startedAtMs));
    }
    const replay = this.opts.replay.check({
      intentId: intent.intentId,
      digest,
      sequence: intent.sequence,
      issuedAtMs: intent.issuedAtMs,
      expiresAtMs: intent.expiresAtMs,
      fencingToken: intent.fencingToken,
    });
    const base = { intentId: intent.intentId, digest, sequence: intent.sequence, startedAtMs };
    if (replay.kind === "reject") {
      const env = this.sign({ ...base, status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: replay.reason, message: replay.message });
      this.outcome(intent, digest, ResultStatus.RESULT_STATUS_REJECTED, replay.reason, false, false);
      return Promise.resolve(env);
    }
    if (replay.kind === "duplicate") {
      return replay.result.then((cached) => {
        if (cached !== undefined) {
          const prior = cachedOutcome(cached);
          this.outcome(intent, digest, prior.status, prior.reasonCode, false, true);
          return cached;
        }
        this.outcome(intent, digest, ResultStatus.RESULT_STATUS_REJECTED, RejectReason.REPLAY, false, true);
        return this.sign({
          ...base,
          status: ResultStatus.RESULT_STATUS_REJECTED,
          reasonCode: RejectReason.REPLAY,
          message: "intent was accepted before the agent restarted; its outcome is unknown (see inventory)",
        });
      });
    }
    return this.runFresh(intent, digest, replay.reservation, startedAtMs);
  }

  private async runFresh(intent: IntentPayload, digest: Buffer, reservation: Reservation, startedAtMs: number): Promise<Uint8Array> {
    const base = { intentId: intent.intentId, digest, sequence: intent.sequence, startedAtMs };
    let status = ResultStatus.RESULT_STATUS_REJECTED;
    let reasonCode = "";
    let message = "";
    let observed: LaneObservation | undefined;
    let executed = false;
    let reservedCreate: string | undefined;
    const secrets: Buffer[] = [];
    try {
      const control = typeof this.opts.control === "function" ? this.opts.control() : this.opts.control;
      const allowed = checkIntentAllowed(intent, control, this.opts.hostId);
      await this.laneMutex.run(allowed.laneId, async () => {
        const inspection = await this.opts.executor.inspect(allowed.laneId);
        if (inspection.observed !== undefined) observed = inspection.observed;
        if (allowed.kind === "create") {
          const spec = intent.action?.$case === "create" ? intent.action.value.spec : undefined;
          if (inspection.ownership === "owned" && spec !== undefined && inspection.observed !== undefined) {
            if (!laneMatchesSpec(inspection.observed, spec)) {
              throw new RejectError(RejectReason.LANE_EXISTS, "a lane with this id exists with a different spec");
            }
            // Idempotent create: a re-issued create for a lane that already exists as asked succeeds untouched.
            status = ResultStatus.RESULT_STATUS_OK;
            message = "lane already exists with this spec";
            return;
          }
          checkOwnership(inspection, true);
          // Creates of other lanes may be under way at the same time (the coordinator applies side by side):
          // they count as lanes from the moment they pass this check, so together they never exceed the limit.
          const lanes = new Set([...(await this.opts.executor.managedLaneIds()), ...this.creating]);
          if (lanes.size >= control.maxLanes) {
            throw new RejectError(RejectReason.MAX_LANES, `this host already has ${lanes.size} lanes (control.maxLanes: ${control.maxLanes})`);
          }
          this.creating.add(allowed.laneId);
          reservedCreate = allowed.laneId;
        } else {
          checkOwnership(inspection, false);
          if (inspection.observed !== undefined) checkLaneAllowed(inspection.observed, control);
          if (inspection.held && !allowedWhileHeld(allowed.kind)) {
            throw new RejectError(RejectReason.LANE_HELD, "an operator hold is on this lane; release it on the host first");
          }
        }
        const action = this.openAction(intent, secrets);
        // At-most-once: the reservation (high-water mark and intent id) is on disk before anything runs.
        try {
          await this.opts.replay.durable(reservation);
        } catch (err) {
          throw new RejectError(RejectReason.STATE_LOST, "cannot persist the replay state; refusing to execute", { cause: err });
        }
        const ctx: ExecutionContext = {
          hostId: this.opts.hostId,
          intentId: intent.intentId,
          sequence: intent.sequence,
          digest: digest.toString("hex"),
          operationId: intent.operationId,
          forcedBy: intent.forcedBy,
        };
        executed = true;
        const outcome = await this.opts.executor.execute(action, ctx);
        observed = outcome.observed;
        status = ResultStatus.RESULT_STATUS_OK;
      });
    } catch (err) {
      if (isRejectError(err)) {
        // A refusal, by the intake or by the executor at the instant of acting (a job started, a marker
        // changed): by the executor's contract nothing was changed.
        status = ResultStatus.RESULT_STATUS_REJECTED;
        reasonCode = err.reason;
        message = err.message;
      } else {
        // Before `execute` nothing changed (an inspect failed, say): that is a refusal, not a failed action.
        status = executed ? ResultStatus.RESULT_STATUS_FAILED : ResultStatus.RESULT_STATUS_REJECTED;
        reasonCode = err instanceof LanekeeperError ? err.code : "INTERNAL";
        message = err instanceof LanekeeperError ? err.message : "the action failed unexpectedly; see the agent log";
      }
      this.opts.log?.warn(
        { intentId: intent.intentId, digest: digest.toString("hex"), reasonCode, executed, err: isRejectError(err) ? undefined : err },
        "intent not carried out",
      );
    } finally {
      for (const s of secrets) s.fill(0);
      if (reservedCreate !== undefined) this.creating.delete(reservedCreate);
    }
    const env = this.sign({ ...base, status, reasonCode, message, observed });
    this.opts.replay.complete(reservation, env);
    this.outcome(intent, digest, status, reasonCode, executed, false);
    if (executed) this.opts.onChange?.();
    return env;
  }

  /** Turn the intent's action into the executor's, opening sealed secrets with the intent-bound context. */
  private openAction(intent: IntentPayload, secrets: Buffer[]): IntentAction {
    const a = intent.action;
    const open = (purpose: SealPurpose, laneId: string, sealed: SealedSecret): Buffer => {
      const s = openSecret(this.opts.sealingKey, sealed, sealContext({ purpose, hostId: this.opts.hostId, laneId, intentId: intent.intentId }));
      secrets.push(s);
      return s;
    };
    switch (a?.$case) {
      case "create": {
        const spec = a.value.spec!;
        return { kind: "create", laneId: spec.laneId, spec, registration: open("registration", spec.laneId, a.value.registration!) };
      }
      case "arm":
        return { kind: "arm", laneId: a.value.laneId, jitConfig: open("jit-config", a.value.laneId, a.value.jitConfig!) };
      case "remove":
        return {
          kind: "remove",
          laneId: a.value.laneId,
          force: a.value.force,
          removeToken: a.value.removeToken === undefined ? undefined : open("remove-token", a.value.laneId, a.value.removeToken),
        };
      case "drain":
        return { kind: "drain", laneId: a.value.laneId };
      case "undrain":
        return { kind: "undrain", laneId: a.value.laneId };
      case "start":
        return { kind: "start", laneId: a.value.laneId };
      case "stop":
        return { kind: "stop", laneId: a.value.laneId, force: a.value.force };
      case "restart":
        return { kind: "restart", laneId: a.value.laneId, force: a.value.force };
      case "hold":
        return { kind: "hold", laneId: a.value.laneId, reason: a.value.reason };
      case "release":
        return { kind: "release", laneId: a.value.laneId };
      case "upgrade":
        return {
          kind: "upgrade",
          laneId: a.value.laneId,
          runnerVersion: a.value.runnerVersion,
          runnerDownload: a.value.runnerDownload,
          image: a.value.image,
        };
      default:
        throw new RejectError(RejectReason.NO_ACTION, "intent carries no action");
    }
  }

  /** Verify, apply and answer a signed key-set update (header `Lk-Kind: keyset` on the intent subject). */
  async handleKeySetUpdate(bytes: Uint8Array): Promise<Uint8Array> {
    const startedAtMs = this.clock.now();
    const digest = createHash("sha256").update(bytes).digest();
    const fields = { intentId: UNKNOWN_INTENT_ID, digest, startedAtMs };
    if (this.opts.keySetUpdates === undefined) {
      return this.sign({ ...fields, sequence: 0, status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.NO_ACTION, message: "key-set updates are not accepted here" });
    }
    const outcome = (status: ResultStatus, reasonCode: string, sequence: number): void =>
      this.opts.onOutcome?.({
        intentId: UNKNOWN_INTENT_ID,
        digest: digest.toString("hex"),
        sequence,
        action: KEYSET_KIND,
        laneId: "",
        status,
        reasonCode,
        atMs: this.clock.now(),
        executed: status === ResultStatus.RESULT_STATUS_OK,
        duplicate: false,
      });
    try {
      const { version } = await this.opts.keySetUpdates.applyKeySetUpdate(bytes);
      this.opts.log?.info({ version }, "trusted key set updated");
      outcome(ResultStatus.RESULT_STATUS_OK, "", version);
      this.opts.onChange?.();
      return this.sign({ ...fields, sequence: version, status: ResultStatus.RESULT_STATUS_OK, reasonCode: "", message: `key set version ${version} applied` });
    } catch (err) {
      const reasonCode = isRejectError(err) ? err.reason : err instanceof LanekeeperError ? err.code : "INTERNAL";
      this.opts.log?.warn({ reasonCode, err: isRejectError(err) ? undefined : err }, "key-set update refused");
      // A refused trust change is evidence of a stolen online key or a botched rotation: it goes into the audit.
      outcome(ResultStatus.RESULT_STATUS_REJECTED, reasonCode, 0);
      return this.sign({
        ...fields,
        sequence: 0,
        status: ResultStatus.RESULT_STATUS_REJECTED,
        reasonCode,
        message: isRejectError(err) ? err.message : "key-set update failed; see the agent log",
      });
    }
  }

  /** A signed rejection for a failure in steps 1–6. */
  private rejectVerification(bytes: Uint8Array, err: unknown, startedAtMs: number): Uint8Array {
    const reason = isRejectError(err) ? err.reason : RejectReason.ENVELOPE_MALFORMED;
    const message = isRejectError(err) ? err.message : "envelope could not be processed";
    let payload: Buffer | undefined;
    try {
      payload = decodeEnvelope("intent", bytes).payload;
    } catch {
      payload = undefined;
    }
    const digest = createHash("sha256").update(payload ?? bytes).digest();
    let intentId = UNKNOWN_INTENT_ID;
    let sequence = 0;
    if (payload !== undefined && AUTHENTICATED_REASONS.has(reason)) {
      // The signature held; the payload is the coordinator's, so its id may be echoed for correlation.
      try {
        const intent = decodeIntentPayload(payload);
        intentId = intent.intentId;
        sequence = intent.sequence;
      } catch {
        // keep the unknown id
      }
    }
    this.opts.log?.warn({ reason, digest: digest.toString("hex") }, "intent rejected at verification");
    return this.sign({ intentId, digest, sequence, status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: reason, message, startedAtMs });
  }

  private rejectUnverified(bytes: Uint8Array, reason: RejectReason, message: string, startedAtMs: number): Uint8Array {
    const digest = createHash("sha256").update(bytes).digest();
    return this.sign({ intentId: UNKNOWN_INTENT_ID, digest, sequence: 0, status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: reason, message, startedAtMs });
  }

  private sign(f: ResultFields): Uint8Array {
    return signResult(
      {
        intentId: f.intentId,
        intentDigest: f.digest,
        hostId: this.opts.hostId,
        sequence: f.sequence,
        status: f.status,
        reasonCode: f.reasonCode,
        message: truncate(f.message),
        startedAtMs: f.startedAtMs,
        finishedAtMs: this.clock.now(),
        observed: f.observed,
      },
      this.opts.identityKey,
    );
  }

  private outcome(intent: IntentPayload, digest: Buffer, status: ResultStatus, reasonCode: string, executed: boolean, duplicate: boolean): void {
    if (this.opts.onOutcome === undefined) return;
    const a = intent.action;
    this.opts.onOutcome({
      intentId: intent.intentId,
      digest: digest.toString("hex"),
      sequence: intent.sequence,
      action: a?.$case ?? "",
      laneId: a === undefined ? "" : a.$case === "create" ? (a.value.spec?.laneId ?? "") : a.value.laneId,
      status,
      reasonCode,
      atMs: this.clock.now(),
      executed,
      duplicate,
    });
  }
}

/** Map the runtime markers to a rejection unless the lane may be acted on (`absent` for create, `owned` otherwise). */
function checkOwnership(inspection: LaneInspection, forCreate: boolean): void {
  switch (inspection.ownership) {
    case "owned":
      if (forCreate) throw new RejectError(RejectReason.LANE_EXISTS, "a lane with this id exists");
      return;
    case "absent":
      if (!forCreate) throw new RejectError(RejectReason.LANE_NOT_FOUND, "no lane with this id on this host");
      return;
    case "unmanaged":
      throw new RejectError(RejectReason.NOT_OWNED, "a unit, container or directory with this lane's name exists without lanekeeper's markers; it is never touched");
    case "foreign-host":
      throw new RejectError(RejectReason.FOREIGN_HOST, "the lane's markers name another host");
    case "bad-marker":
      throw new RejectError(RejectReason.BAD_MARKER, "the lane's markers do not verify");
    case "symlink":
      throw new RejectError(RejectReason.SYMLINK, "the lane's unit file or directory is a symlink");
  }
}

/** Status and reason of a cached signed result (our own bytes; decoded only for the outcome record). */
function cachedOutcome(env: Uint8Array): { status: ResultStatus; reasonCode: string } {
  try {
    const r = ResultPayload.decode(decodeEnvelope("result", env).payload);
    return { status: r.status, reasonCode: r.reasonCode };
  } catch {
    return { status: ResultStatus.RESULT_STATUS_UNSPECIFIED, reasonCode: "" };
  }
}

function truncate(s: string): string {
  return s.length > MAX_RESULT_MESSAGE_CHARS ? `${s.slice(0, MAX_RESULT_MESSAGE_CHARS - 1)}…` : s;
}
