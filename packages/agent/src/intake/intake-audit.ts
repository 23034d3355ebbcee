import { KEYSET_KIND, ResultStatus, type AuditInput } from "@lanekeeper/shared";
import type { IntakeOutcome } from "./intake.js";

/**
 * The record an intake outcome leaves in the host's own audit chain, if any:
 * - a signed intent the intake refused before acting (allowlist, ownership, hold, replay, max lanes): `rejected`
 *   (refusals at the instant of acting are audited by the lane manager, successes by the lane manager too);
 * - a key-set update: `succeeded` when the trust changed, `rejected` with its reason when refused (an update
 *   signed by the online key instead of the root is how a stolen online key shows up on the host).
 */
export function intakeAuditRecord(hostId: string, o: IntakeOutcome): AuditInput | undefined {
  const source = `agent:${hostId}`;
  if (o.action === KEYSET_KIND && o.status === ResultStatus.RESULT_STATUS_OK) {
    return {
      source,
      action: KEYSET_KIND,
      phase: "succeeded",
      hostId,
      message: `trusted key set version ${o.sequence} applied`,
      details: { keysetVersion: o.sequence, digest: o.digest },
    };
  }
  if (o.status === ResultStatus.RESULT_STATUS_REJECTED && !o.executed && !o.duplicate) {
    return {
      source,
      action: o.action === "" ? "intent" : o.action,
      phase: "rejected",
      hostId,
      intentId: o.intentId,
      reasonCode: o.reasonCode,
      ...(o.laneId === "" ? {} : { laneId: o.laneId }),
      details: { sequence: o.sequence, digest: o.digest },
    };
  }
  return undefined;
}
