import { sealContext, type SealPurpose } from "@lanekeeper/shared";

/**
 * The AEAD context of a secret sealed into an intent: shared's `<purpose>:<hostId>/<laneId>` followed by
 * `/<intentId>`, e.g. `registration:build01/lane-7/0f3c…`. Binding the intent id means a sealed blob cannot
 * be lifted into another intent, even one for the same lane; every re-issue seals afresh. All parts are
 * validated ids (`[a-z0-9-]`, hex), so the string is unambiguous. The agent's intake builds the same string
 * (`packages/agent/src/intake/seal-context.ts`); docs/protocol.md documents it.
 */
export function intentSealContext(purpose: SealPurpose, hostId: string, laneId: string, intentId: string): string {
  return `${sealContext({ purpose, hostId, laneId })}/${intentId}`;
}
