import type { Msg, NatsConnection } from "nats";
import type { Logger } from "pino";
import {
  DEFAULT_INTENT_TTL_MS,
  intentSubject,
  LanekeeperError,
  RejectReason,
  ResultStatus,
  systemClock,
  type ActionKind,
  MAX_INTENT_TTL_MS,
  type Clock,
  type CoordinatorPolicy,
  type ResultPayload,
  type SigningKey,
} from "@lanekeeper/shared";
import type { HostRegistry } from "./host-registry.js";
import { buildSignedIntent, dispatchLaneId, type DispatchAction } from "./intent-builder.js";
import { answeredOutcome, undeliveredOutcome, type IntentOutcome, type UndeliveredCode } from "./intent-outcome.js";
import {
  DEFAULT_BEFORE_FLOOR_RETRY_MS,
  DEFAULT_BEFORE_FLOOR_WAIT_MS,
  DEFAULT_DISPATCH_ATTEMPTS,
  DEFAULT_NOT_BEFORE_SLACK_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  MAX_SEND_BATCH,
} from "./limits.js";
import { ReplyInbox } from "./reply-inbox.js";
import { ResultRejectedError, ResultVerifier } from "./result-verifier.js";
import type { SequenceAllocator } from "./sequence-allocator.js";
import type { CoordinatorErrorCode } from "../error-codes.js";

/**
 * Whether re-issuing an action after a timeout is safe by default, i.e. running it twice has the effect of
 * running it once on the agent:
 * - `create` is idempotent by lane id: an owned lane with the same spec answers OK without a runtime call (a
 *   different spec is `LANE_EXISTS`); the registration token of the first attempt is simply not used again.
 * - `drain`, `undrain`, `start`, `stop`, `hold`, `release` set a state.
 * - `remove` of a lane already removed answers `LANE_NOT_FOUND`, which {@link isRemoveDone} reads as done.
 * - `upgrade` to the version or image a lane already runs is a no-op on the agent.
 * - `restart` would restart twice, and `arm` would hand over a second single-use JIT config: not re-issued
 *   unless the caller says so.
 */
export const REISSUE_SAFE: Readonly<Record<ActionKind, boolean>> = Object.freeze({
  create: true,
  drain: true,
  undrain: true,
  start: true,
  stop: true,
  restart: false,
  remove: true,
  hold: true,
  release: true,
  arm: false,
  // An upgrade to the version or image the lane already runs answers OK without touching it.
  upgrade: true,
});

/** Dispatch could not get a verified result. */
export class DispatchError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(
    code: UndeliveredCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
  }
}

/** Options of {@link Dispatcher}. */
export interface DispatcherOptions {
  nc: NatsConnection;
  /** The coordinator's active intent-signing key. */
  signingKey: SigningKey;
  sequences: SequenceAllocator;
  hosts: HostRegistry;
  /** @default a verifier over `hosts` */
  verifier?: ResultVerifier;
  /** @default systemClock */
  clock?: Clock;
  /** Intent lifetime. @default policy `coordinator.intentTtlMs` (capped to fit MAX_INTENT_TTL_MS with the slack), else DEFAULT_INTENT_TTL_MS */
  ttlMs?: number;
  /** @default DEFAULT_NOT_BEFORE_SLACK_MS */
  notBeforeSlackMs?: number;
  /** @default policy `coordinator.resultTimeoutMs`, else DEFAULT_REQUEST_TIMEOUT_MS */
  requestTimeoutMs?: number;
  /**
   * The agent's signed high-water mark (from its last verified inventory). When a result says
   * `SEQUENCE_TOO_LOW` (this coordinator's sequence store is behind the agent, e.g. restored from a backup) the
   * dispatcher fast-forwards the host's sequence past it and re-issues once: the refused intent did not run.
   */
  agentHwm?: (hostId: string) => Promise<number | undefined>;
  /**
   * How long to keep re-issuing while the agent answers `BEFORE_FLOOR` (it restarted with lost replay state
   * and accepts only intents issued after its start + clock skew). Refused intents did not run, so re-issuing
   * is safe for every action. @default DEFAULT_BEFORE_FLOOR_WAIT_MS
   */
  beforeFloorWaitMs?: number;
  /** Pause between those re-issues. @default DEFAULT_BEFORE_FLOOR_RETRY_MS */
  beforeFloorRetryMs?: number;
  /**
   * Fencing: the token every intent carries, checked against the fence before each intent is allocated, so a
   * superseded coordinator stops before it sends (FENCING_TOKEN_STALE). @default none (token 0, no check)
   */
  fence?: IntentFence;
  log?: Logger;
}

/** What the dispatcher needs of the coordinator's fencing ({@link LaneFence}). */
export interface IntentFence {
  /** The token this process acts under. */
  readonly token: number;
  /** Throws FENCING_TOKEN_STALE when a newer leader has raised the fence. */
  check(what: string): Promise<void>;
}

/** {@link DispatcherOptions} with every default filled in: what a {@link Dispatcher} runs with. */
export interface ResolvedDispatcherOptions extends DispatcherOptions {
  verifier: ResultVerifier;
  clock: Clock;
  ttlMs: number;
  notBeforeSlackMs: number;
  requestTimeoutMs: number;
  beforeFloorWaitMs: number;
  beforeFloorRetryMs: number;
}

/**
 * Fills in the dispatcher's defaults: an explicit option wins, then the policy's `coordinator` section, then the
 * built-in default. Pure apart from building the default verifier; resolving resolved options changes nothing.
 */
export function resolveDispatcherOptions(
  override: DispatcherOptions,
  policy?: Pick<CoordinatorPolicy, "intentTtlMs" | "resultTimeoutMs">,
): ResolvedDispatcherOptions {
  const clock = override.clock ?? systemClock;
  const notBeforeSlackMs = override.notBeforeSlackMs ?? DEFAULT_NOT_BEFORE_SLACK_MS;
  return {
    ...override,
    clock,
    verifier: override.verifier ?? new ResultVerifier(override.hosts, { clock }),
    // The agent refuses intents living longer than MAX_INTENT_TTL_MS, and the not-before slack counts.
    ttlMs: override.ttlMs ?? (policy === undefined ? DEFAULT_INTENT_TTL_MS : Math.min(policy.intentTtlMs, MAX_INTENT_TTL_MS - notBeforeSlackMs)),
    notBeforeSlackMs,
    requestTimeoutMs: override.requestTimeoutMs ?? policy?.resultTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    beforeFloorWaitMs: override.beforeFloorWaitMs ?? DEFAULT_BEFORE_FLOOR_WAIT_MS,
    beforeFloorRetryMs: override.beforeFloorRetryMs ?? DEFAULT_BEFORE_FLOOR_RETRY_MS,
  };
}

/** One dispatch. */
export interface DispatchRequest {
  hostId: string;
  action: DispatchAction;
  operationId?: string;
  forcedBy?: string;
  /** Re-issue after a timeout. @default REISSUE_SAFE[action kind] */
  reissue?: boolean;
  /** Attempts including the first. @default DEFAULT_DISPATCH_ATTEMPTS */
  attempts?: number;
  /** @default the dispatcher's requestTimeoutMs */
  timeoutMs?: number;
  /** Called before every attempt is sent; throwing stops the dispatch (an action that lost its operation lease). */
  beforeSend?: () => void;
}

/** A published intent: its reply, id and sequence. */
interface Sent {
  readonly reply: Promise<Msg>;
  readonly intentId: string;
  readonly sequence: number;
}

/** An intent waiting in its host's send queue. */
interface PendingSend {
  readonly req: DispatchRequest;
  readonly sealingKey: Uint8Array;
  readonly timeout: number;
  readonly intentIds: string[];
  readonly resolve: (s: Sent) => void;
  readonly reject: (err: unknown) => void;
}

/** A verified answer. */
export interface DispatchOutcome {
  readonly result: ResultPayload;
  /** The signed result envelope (for the audit record). */
  readonly resultEnvelope: Uint8Array;
  /** Intent ids sent, in order; the last one is the one answered. */
  readonly intentIds: readonly string[];
  readonly sequence: number;
}

/** Whether a remove outcome means the lane is gone (removed now, or already gone before a re-issue). */
export function isRemoveDone(r: ResultPayload): boolean {
  return r.status === ResultStatus.RESULT_STATUS_OK || (r.status === ResultStatus.RESULT_STATUS_REJECTED && r.reasonCode === String(RejectReason.LANE_NOT_FOUND));
}

/**
 * Sends signed intents as NATS requests to `lk.v1.intent.<hostId>` and returns the verified signed result.
 *
 * Every attempt is a NEW intent: a fresh id, a new durable sequence, fresh sealing, new signature. The same
 * bytes are never sent twice, so the agent's replay protection and the at-most-once rule hold even when a
 * reply was lost after the agent acted. Whether a timed-out action is re-issued is the caller's decision
 * (`reissue`, defaulting to {@link REISSUE_SAFE}). Allocation and publication are serialized per host, so
 * intents reach an agent in sequence order and are not refused as out of order; intents to one host that are
 * waiting together are sent as a batch (one fencing check, one sequence allocation), and replies are awaited
 * outside, so many intents per host are in flight at once.
 */
export class Dispatcher {
  private readonly opts: ResolvedDispatcherOptions;
  /** Intents waiting to be sent, per host (see {@link send}). */
  private readonly sendQueues = new Map<string, PendingSend[]>();
  /** Hosts whose send pump is running. */
  private readonly pumping = new Set<string>();
  /** Where the agents' results arrive (one subscription and one deadline timer for every intent in flight). */
  private readonly replies: ReplyInbox;

  /** Options are resolved by {@link resolveDispatcherOptions}; pass resolved ones to add the policy's. */
  constructor(opts: DispatcherOptions) {
    this.opts = resolveDispatcherOptions(opts);
    this.replies = new ReplyInbox(this.opts.nc);
  }


  /** Send `req.action` to `req.hostId` and wait for a verified result (OK, REJECTED or FAILED). */
  async dispatch(req: DispatchRequest): Promise<DispatchOutcome> {
    const host = this.opts.hosts.host(req.hostId);
    if (host === undefined) throw new DispatchError("DISPATCH_UNKNOWN_HOST", `host ${req.hostId} is not enrolled`);
    const attempts = Math.max(1, req.attempts ?? DEFAULT_DISPATCH_ATTEMPTS);
    const reissue = req.reissue ?? REISSUE_SAFE[req.action.kind];
    const timeout = req.timeoutMs ?? this.opts.requestTimeoutMs;
    const intentIds: string[] = [];
    let fastForwarded = false;
    const floorDeadline = this.opts.clock.now() + this.opts.beforeFloorWaitMs;
    for (let attempt = 1; ; attempt++) {
      req.beforeSend?.();
      const { reply, intentId, sequence } = await this.send(req, host.sealingKey, timeout, intentIds);
      let data: Uint8Array;
      try {
        data = (await reply).data;
      } catch (err) {
        this.opts.verifier.abandon(intentId);
        const code = (err as { code?: string }).code;
        // No responders: nobody received it, so a re-issue is safe whatever the action.
        const noResponders = code === "DISPATCH_NO_RESPONDERS";
        const canRetry = attempt < attempts && (reissue || noResponders);
        this.opts.log?.warn(
          { hostId: req.hostId, intentId, sequence, attempt, noResponders, reissue: canRetry, laneId: dispatchLaneId(req.action) },
          "no result for intent",
        );
        if (canRetry) continue;
        throw new DispatchError(
          noResponders ? "DISPATCH_NO_RESPONDERS" : "DISPATCH_TIMEOUT",
          noResponders
            ? `no agent is listening for ${req.hostId}: check that lanekeeper-agent runs there and is connected`
            : `no result from ${req.hostId} within ${timeout} ms (intent ${intentId}); whether it ran is unknown: check the host's inventory`,
          { cause: err, details: { intentIds: [...intentIds] } },
        );
      }
      let accepted;
      try {
        accepted = this.opts.verifier.accept(data, intentId);
      } catch (err) {
        this.opts.verifier.abandon(intentId);
        if (err instanceof ResultRejectedError) {
          throw new DispatchError("DISPATCH_BAD_RESULT", `the reply from ${req.hostId} failed verification: ${err.reason}`, {
            cause: err,
            details: { intentIds: [...intentIds], reason: err.reason },
          });
        }
        throw err;
      }
      const r = accepted.result;
      if (
        r.status === ResultStatus.RESULT_STATUS_REJECTED &&
        r.reasonCode === String(RejectReason.SEQUENCE_TOO_LOW) &&
        !fastForwarded &&
        this.opts.agentHwm !== undefined
      ) {
        const hwm = await this.opts.agentHwm(req.hostId);
        if (hwm !== undefined && hwm >= sequence) {
          fastForwarded = true;
          this.opts.log?.warn({ hostId: req.hostId, sequence, agentHwm: hwm }, "sequence store behind the agent; fast-forwarding");
          await this.opts.sequences.advanceTo(req.hostId, hwm);
          continue;
        }
      }
      if (
        r.status === ResultStatus.RESULT_STATUS_REJECTED &&
        r.reasonCode === String(RejectReason.BEFORE_FLOOR) &&
        this.opts.clock.now() < floorDeadline
      ) {
        const pause = this.opts.beforeFloorRetryMs;
        this.opts.log?.warn({ hostId: req.hostId, intentId, retryInMs: pause }, "agent lost its replay state and is below its floor; re-issuing");
        await new Promise((res) => setTimeout(res, pause));
        continue;
      }
      return { result: r, resultEnvelope: data, intentIds, sequence };
    }
  }

  /**
   * {@link dispatch}, with how it ended as a typed {@link IntentOutcome}: a verified result becomes succeeded,
   * refused (with its {@link RejectReason}) or failed, a {@link DispatchError} becomes timeout, no-responders,
   * unknown-host or bad-result. Throws only what is no dispatch outcome (a sequence-store or signing fault).
   */
  async deliver(req: DispatchRequest): Promise<IntentOutcome> {
    try {
      return answeredOutcome(await this.dispatch(req));
    } catch (err) {
      if (!(err instanceof DispatchError)) throw err;
      const ids = err.details?.intentIds;
      const intentIds = Array.isArray(ids) ? ids.filter((x): x is string => typeof x === "string") : [];
      return undeliveredOutcome(err.code as UndeliveredCode, err.message, intentIds);
    }
  }

  /**
   * Queue one intent for `req.hostId` and resolve once it is published. The host's send pump takes every intent
   * queued meanwhile as one batch: one fencing check and one sequence allocation for the whole batch, then each
   * intent built, sealed, signed and published in sequence order in one synchronous loop (NATS writes them to
   * the socket together). An intent waits for the fence and the sequence store, never for another's reply.
   */
  private send(req: DispatchRequest, sealingKey: Uint8Array, timeout: number, intentIds: string[]): Promise<Sent> {
    return new Promise<Sent>((resolve, reject) => {
      let queue = this.sendQueues.get(req.hostId);
      if (queue === undefined) {
        queue = [];
        this.sendQueues.set(req.hostId, queue);
      }
      queue.push({ req, sealingKey, timeout, intentIds, resolve, reject });
      if (!this.pumping.has(req.hostId)) {
        this.pumping.add(req.hostId);
        void this.pump(req.hostId);
      }
    });
  }

  /** Drain one host's send queue batch by batch; only one pump per host runs, so sequence order is send order. */
  private async pump(hostId: string): Promise<void> {
    try {
      // Let the sends of this event-loop turn (replies that arrived together, say) join the first batch.
      await new Promise<void>((r) => setImmediate(r));
      for (;;) {
        const queue = this.sendQueues.get(hostId);
        if (queue === undefined || queue.length === 0) break;
        const batch = queue.splice(0, MAX_SEND_BATCH);
        let sequences: number[];
        try {
          // Started after every intent of the batch was asked for: as strong as one check per intent.
          const first = batch[0]!.req;
          await this.opts.fence?.check(
            batch.length === 1
              ? `sending ${first.action.kind} for lane ${dispatchLaneId(first.action)} to ${hostId}`
              : `sending ${batch.length} intents (the first ${first.action.kind} for lane ${dispatchLaneId(first.action)}) to ${hostId}`,
          );
          sequences = await this.opts.sequences.nextMany(hostId, batch.length);
        } catch (err) {
          for (const p of batch) p.reject(err);
          continue;
        }
        // No await from here to the end of the loop: publication order is sequence order.
        const nowMs = this.opts.clock.now();
        for (const [i, p] of batch.entries()) {
          try {
            p.resolve(this.publish(p, sequences[i]!, nowMs));
          } catch (err) {
            // An unused sequence is a gap, which the agent accepts.
            p.reject(err);
          }
        }
      }
    } finally {
      this.sendQueues.delete(hostId);
      this.pumping.delete(hostId);
    }
  }

  /** Build, seal, sign and publish one intent with its allocated sequence (synchronous: see {@link pump}). */
  private publish(p: PendingSend, sequence: number, nowMs: number): Sent {
    const { req } = p;
    const built = buildSignedIntent({
      hostId: req.hostId,
      hostSealingKey: p.sealingKey,
      sequence,
      action: req.action,
      signingKey: this.opts.signingKey,
      nowMs,
      ttlMs: this.opts.ttlMs,
      notBeforeSlackMs: this.opts.notBeforeSlackMs,
      ...(req.operationId === undefined ? {} : { operationId: req.operationId }),
      ...(req.forcedBy === undefined ? {} : { forcedBy: req.forcedBy }),
      ...(this.opts.fence === undefined ? {} : { fencingToken: this.opts.fence.token }),
    });
    this.opts.verifier.expect({
      intentId: built.intent.intentId,
      hostId: req.hostId,
      sequence,
      digest: built.digest,
      expiresAtMs: built.intent.expiresAtMs,
    });
    p.intentIds.push(built.intent.intentId);
    // request() publishes synchronously, so the loop's order is the order on the wire.
    const reply = this.replies.request(intentSubject(req.hostId), built.envelope, p.timeout);
    void reply.catch(() => undefined);
    return { reply, intentId: built.intent.intentId, sequence };
  }
}
