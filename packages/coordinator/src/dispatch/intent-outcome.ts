import { RejectReason, ResultStatus, type ResultPayload } from "@lanekeeper/shared";

/** Fields of an outcome the agent answered: its verified signed result. */
interface Answered {
  readonly result: ResultPayload;
  /** The signed result envelope (for the audit record). */
  readonly resultEnvelope: Uint8Array;
  /** Intent ids sent, in order; the last one is the one answered. */
  readonly intentIds: readonly string[];
  readonly sequence: number;
}

/** Why no verified result came back (the {@link DispatchError} codes). */
export type UndeliveredCode = "DISPATCH_TIMEOUT" | "DISPATCH_NO_RESPONDERS" | "DISPATCH_UNKNOWN_HOST" | "DISPATCH_BAD_RESULT";

/**
 * How one dispatch ended, as the apply engine and the lane commands act on it: callers switch on `kind` and, for a
 * refusal, on the agent's typed {@link RejectReason}, instead of comparing status and reason strings.
 */
export type IntentOutcome =
  /** The agent carried the action out (`RESULT_STATUS_OK`). */
  | (Answered & { readonly kind: "succeeded" })
  /**
   * The agent refused (`RESULT_STATUS_REJECTED`): by its contract nothing changed. `reason` is the typed reason
   * when `code` is one of {@link RejectReason}; other codes are refusals before acting (an inspect failed, say).
   */
  | (Answered & { readonly kind: "refused"; readonly reason: RejectReason | undefined; readonly code: string; readonly message: string })
  /** The agent started the action and it failed (`RESULT_STATUS_FAILED`); `code` is the agent's stable code. */
  | (Answered & { readonly kind: "failed"; readonly code: string; readonly message: string })
  /** No result within the timeout: whether the action ran is unknown. */
  | { readonly kind: "timeout"; readonly code: "DISPATCH_TIMEOUT"; readonly message: string; readonly intentIds: readonly string[] }
  /** Nobody listens for the host: nothing was received. */
  | { readonly kind: "no-responders"; readonly code: "DISPATCH_NO_RESPONDERS"; readonly message: string; readonly intentIds: readonly string[] }
  /** The host is not enrolled: nothing was sent. */
  | { readonly kind: "unknown-host"; readonly code: "DISPATCH_UNKNOWN_HOST"; readonly message: string; readonly intentIds: readonly string[] }
  /** A reply came but failed verification. */
  | { readonly kind: "bad-result"; readonly code: "DISPATCH_BAD_RESULT"; readonly message: string; readonly intentIds: readonly string[] };

/** An outcome with the agent's verified result. */
export type AnsweredOutcome = Extract<IntentOutcome, { readonly kind: "succeeded" | "refused" | "failed" }>;

/** An outcome without a verified result. */
export type UndeliveredOutcome = Extract<IntentOutcome, { readonly code: UndeliveredCode }>;

const REJECT_REASONS: ReadonlySet<string> = new Set(Object.values(RejectReason));

/** The typed outcome of a verified result. */
export function answeredOutcome(out: Answered): IntentOutcome {
  const r = out.result;
  if (r.status === ResultStatus.RESULT_STATUS_OK) return { ...out, kind: "succeeded" };
  if (r.status === ResultStatus.RESULT_STATUS_REJECTED) {
    const reason = REJECT_REASONS.has(r.reasonCode) ? (r.reasonCode as RejectReason) : undefined;
    return { ...out, kind: "refused", reason, code: r.reasonCode, message: r.message };
  }
  return { ...out, kind: "failed", code: r.reasonCode, message: r.message };
}

/** The typed outcome of a dispatch that got no verified result. */
export function undeliveredOutcome(code: UndeliveredCode, message: string, intentIds: readonly string[]): UndeliveredOutcome {
  switch (code) {
    case "DISPATCH_TIMEOUT":
      return { kind: "timeout", code, message, intentIds };
    case "DISPATCH_NO_RESPONDERS":
      return { kind: "no-responders", code, message, intentIds };
    case "DISPATCH_UNKNOWN_HOST":
      return { kind: "unknown-host", code, message, intentIds };
    case "DISPATCH_BAD_RESULT":
      return { kind: "bad-result", code, message, intentIds };
  }
}

/** Whether the outcome carries the agent's signed result. */
export function isAnswered(o: IntentOutcome): o is AnsweredOutcome {
  return o.kind === "succeeded" || o.kind === "refused" || o.kind === "failed";
}

/** Whether a remove is done: removed now, or refused because the lane was already gone (an earlier attempt ran). */
export function removeDone(o: IntentOutcome): boolean {
  return o.kind === "succeeded" || (o.kind === "refused" && o.reason === RejectReason.LANE_NOT_FOUND);
}

/**
 * Whether the agent did not stop the lane because a job runs in it: its refusal, or the runner's own refusal to
 * unregister while running a job (a failed remove whose code is the same).
 */
export function jobRunning(o: IntentOutcome): boolean {
  if (o.kind === "refused") return o.reason === RejectReason.JOB_RUNNING;
  return o.kind === "failed" && o.code === String(RejectReason.JOB_RUNNING);
}
