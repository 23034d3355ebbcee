/** Signed inventory snapshots (`lanekeeper.inventory.v1`), published by agents and verified by the coordinator. */
import { systemClock, type Clock } from "./clock.js";
import { openEnvelope, signEnvelope } from "./envelope.js";
import { RejectError, RejectReason } from "./errors.js";
import { InventorySnapshot } from "./gen/lanekeeper/v1/inventory.js";
import type { SigningKey } from "./keys.js";
import { MAX_ALLOWLIST_ENTRIES, MAX_HOST_ID_CHARS, MAX_INVENTORY_LANES, MAX_INVENTORY_UNMANAGED } from "./limits.js";
import type { EnrolledHostKey } from "./result.js";
import { decodeStrict } from "./strict-decode.js";

/** Encode and sign an inventory snapshot with the agent's identity key. */
export function signInventory(snapshot: InventorySnapshot, key: SigningKey): Uint8Array {
  return signEnvelope("inventory", InventorySnapshot.encode(snapshot).finish(), key);
}

/**
 * Decode an inventory snapshot strictly and check its caps (`PAYLOAD_MALFORMED`): lanes, unmanaged runners and
 * allowlist entries. The byte size was capped before decoding (`MAX_INVENTORY_ENVELOPE_BYTES`).
 */
export function decodeInventorySnapshot(bytes: Uint8Array): InventorySnapshot {
  const s = decodeStrict(InventorySnapshot, bytes, "inventory snapshot", RejectReason.PAYLOAD_MALFORMED);
  if (s.hostId.length === 0 || s.hostId.length > MAX_HOST_ID_CHARS) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "inventory host id is empty or too long");
  }
  if (s.lanes.length > MAX_INVENTORY_LANES || s.unmanaged.length > MAX_INVENTORY_UNMANAGED) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "inventory lists too many lanes or runners");
  }
  const a = s.allowlist;
  if (a !== undefined && [a.scopes, a.pools, a.backends, a.images, a.actions].some((l) => l.length > MAX_ALLOWLIST_ENTRIES)) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `inventory allowlist lists more than ${MAX_ALLOWLIST_ENTRIES} entries`);
  }
  const h = s.auditHead;
  if (h !== undefined && (!Number.isSafeInteger(h.seq) || !/^[0-9a-f]{64}$/.test(h.hash) || !/^([0-9a-f]{64})?$/.test(h.firstHash))) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "inventory audit head must be a safe seq with hex SHA-256 hashes");
  }
  return s;
}

/** A verified inventory snapshot. */
export interface VerifiedInventory {
  snapshot: InventorySnapshot;
  digest: Buffer;
  keyId: string;
}

/**
 * Verify an inventory envelope: signature by an enrolled host key, strict decode, and `hostId` equal to the host
 * the key is enrolled for (`ISSUER_MISMATCH`): a host reports only on itself.
 */
export function verifyInventory(
  bytes: Uint8Array,
  resolveHostKey: (keyId: string) => EnrolledHostKey | undefined,
  clock: Clock = systemClock,
): VerifiedInventory {
  let enrolled: EnrolledHostKey | undefined;
  const opened = openEnvelope(
    "inventory",
    bytes,
    (keyId) => {
      enrolled = resolveHostKey(keyId);
      return enrolled?.publicKey;
    },
    clock,
  );
  const snapshot = decodeInventorySnapshot(opened.payload);
  if (!enrolled || snapshot.hostId !== enrolled.hostId) {
    throw new RejectError(
      RejectReason.ISSUER_MISMATCH,
      `inventory claims host ${JSON.stringify(snapshot.hostId)} but is signed by the key of ${JSON.stringify(enrolled?.hostId ?? "")}`,
    );
  }
  return { snapshot, digest: opened.digest, keyId: opened.keyId };
}
