import { describe, expect, it } from "vitest";
import { FakeClock } from "./clock.js";
import { signEnvelope } from "./envelope.js";
import { RejectError, RejectReason } from "./errors.js";
import { ResultPayload, ResultStatus } from "./gen/lanekeeper/v1/intent.js";
import { InventorySnapshot } from "./gen/lanekeeper/v1/inventory.js";
import { decodeInventorySnapshot, signInventory, verifyInventory } from "./inventory.js";
import { generateSigningKey, publicKeyFromRaw, type SigningKey } from "./keys.js";
import { decodeResultPayload, signResult, verifyResult, type EnrolledHostKey } from "./result.js";

function reasonOf(fn: () => unknown): RejectReason | "accepted" {
  try {
    fn();
    return "accepted";
  } catch (err) {
    if (err instanceof RejectError) return err.reason;
    throw err;
  }
}

const hostA = generateSigningKey();
const hostB = generateSigningKey();
const enrolled = new Map<string, EnrolledHostKey>([
  [hostA.keyId, { hostId: "build01", publicKey: publicKeyFromRaw(hostA.publicKey) }],
  [hostB.keyId, { hostId: "build02", publicKey: publicKeyFromRaw(hostB.publicKey) }],
]);
const resolve = (keyId: string): EnrolledHostKey | undefined => enrolled.get(keyId);
const clock = new FakeClock();

const result = (hostId: string, extra: Partial<ResultPayload> = {}): ResultPayload =>
  ResultPayload.fromPartial({
    intentId: "0123456789abcdef0123456789abcdef",
    intentDigest: Buffer.alloc(32, 7),
    hostId,
    sequence: 3,
    status: ResultStatus.RESULT_STATUS_OK,
    ...extra,
  });

describe("signed results", () => {
  it("verify for the host whose key signed them", () => {
    const v = verifyResult(signResult(result("build01"), hostA), resolve, clock);
    expect(v.result.hostId).toBe("build01");
    expect(v.keyId).toBe(hostA.keyId);
  });

  it("reject a result signed by host B's key that claims host A", () => {
    expect(reasonOf(() => verifyResult(signResult(result("build01"), hostB), resolve, clock))).toBe(RejectReason.ISSUER_MISMATCH);
  });

  it("reject unknown keys, other kinds and malformed payloads", () => {
    const stranger: SigningKey = generateSigningKey();
    expect(reasonOf(() => verifyResult(signResult(result("build01"), stranger), resolve, clock))).toBe(RejectReason.UNKNOWN_KEY);
    const asIntent = signEnvelope("intent", ResultPayload.encode(result("build01")).finish(), hostA);
    expect(reasonOf(() => verifyResult(asIntent, resolve, clock))).toBe(RejectReason.BAD_SIGNATURE);
    const dec = (r: ResultPayload): RejectReason | "accepted" => reasonOf(() => decodeResultPayload(ResultPayload.encode(r).finish()));
    expect(dec(result("build01", { intentDigest: Buffer.alloc(31) }))).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec(result("build01", { intentId: "x" }))).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec(result("build01", { status: ResultStatus.RESULT_STATUS_UNSPECIFIED }))).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec(result(""))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });
});

describe("signed inventories", () => {
  const snap = (hostId: string): InventorySnapshot => InventorySnapshot.fromPartial({ hostId, snapshotSeq: 1, takenAtMs: clock.now() });

  it("verify only for the host that signed them", () => {
    expect(verifyInventory(signInventory(snap("build02"), hostB), resolve, clock).snapshot.hostId).toBe("build02");
    expect(reasonOf(() => verifyInventory(signInventory(snap("build01"), hostB), resolve, clock))).toBe(RejectReason.ISSUER_MISMATCH);
    expect(reasonOf(() => verifyInventory(signResult(result("build02"), hostB), resolve, clock))).toBe(RejectReason.BAD_SIGNATURE);
    expect(reasonOf(() => decodeInventorySnapshot(InventorySnapshot.encode(snap("")).finish()))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });
});
