// security-cases.md group 5: keys. Unknown, revoked and out-of-window keys; a key-id hint naming another key; a
// payload issuer differing from the verifying key; key-set updates that skip, roll back, are signed only by the
// new key, or are expired.
import { sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  applyKeySetUpdate,
  buildKeySet,
  FakeClock,
  generateSigningKey,
  KeyStatus,
  pae,
  RejectReason,
  SignedKeySet,
  SignedEnvelope,
  signIntent,
  signKeySet,
  TrustedKeySet,
  TrustedKeyStore,
  encodeIntent,
  type SigningKey,
} from "@lanekeeper/shared";
import { intentFor, reasonOf, rewrapEnvelope, signUnchecked, T0, verify, world } from "./envelope-fixture.js";

const DAY = 86_400_000;

describe("keys used to verify intents", () => {
  const other = generateSigningKey();
  const revoked = generateSigningKey();
  const future = generateSigningKey();
  const past = generateSigningKey();
  const next = generateSigningKey();
  const retired = generateSigningKey();
  const w = world([
    { key: other },
    { key: revoked, status: KeyStatus.KEY_STATUS_REVOKED },
    { key: future, notBeforeMs: T0 + DAY },
    { key: past, notBeforeMs: T0 - 10 * DAY, notAfterMs: T0 - DAY },
    { key: next, status: KeyStatus.KEY_STATUS_NEXT },
    { key: retired, status: KeyStatus.KEY_STATUS_RETIRED, notAfterMs: T0 + 1000 },
  ]);
  const signedBy = (k: SigningKey): Uint8Array => signIntent(intentFor(k), k);

  it("accepts active, announced (next) and retired-but-valid keys", () => {
    expect(reasonOf(() => verify(signedBy(w.coordinator), w))).toBe("accepted");
    expect(reasonOf(() => verify(signedBy(next), w))).toBe("accepted");
    expect(reasonOf(() => verify(signedBy(retired), w))).toBe("accepted");
  });

  it("rejects an unknown key id", () => {
    expect(reasonOf(() => verify(signedBy(generateSigningKey()), w))).toBe(RejectReason.UNKNOWN_KEY);
  });

  it("rejects a revoked key", () => {
    expect(reasonOf(() => verify(signedBy(revoked), w))).toBe(RejectReason.KEY_REVOKED);
  });

  it("rejects keys outside their validity window", () => {
    expect(reasonOf(() => verify(signedBy(future), w))).toBe(RejectReason.KEY_NOT_VALID_NOW);
    expect(reasonOf(() => verify(signedBy(past), w))).toBe(RejectReason.KEY_NOT_VALID_NOW);
    const clock = new FakeClock(T0 + 2000);
    const late = signIntent(intentFor(retired, {}, T0 + 2000), retired);
    expect(reasonOf(() => verify(late, { store: w.store, clock }))).toBe(RejectReason.KEY_NOT_VALID_NOW);
  });

  it("treats the key id as a hint only: naming key A on a message signed by B fails", () => {
    const byOther = signIntent(intentFor(other), other);
    // Hint says coordinator, signature is other's: the coordinator key does not verify it.
    expect(reasonOf(() => verify(rewrapEnvelope(byOther, { keyId: w.coordinator.keyId }), w))).toBe(RejectReason.BAD_SIGNATURE);
    // Hint names a revoked key: refused before any signature work.
    expect(reasonOf(() => verify(rewrapEnvelope(byOther, { keyId: revoked.keyId }), w))).toBe(RejectReason.KEY_REVOKED);
  });

  it("rejects a payload issuer that differs from the verifying key", () => {
    const lying = signUnchecked(intentFor(w.coordinator, { issuerKeyId: other.keyId }), w.coordinator);
    expect(reasonOf(() => verify(lying, w))).toBe(RejectReason.ISSUER_MISMATCH);
    const empty = signUnchecked(intentFor(w.coordinator, { issuerKeyId: "" }), w.coordinator);
    expect(reasonOf(() => verify(empty, w))).toBe(RejectReason.ISSUER_MISMATCH);
  });

  it("rejects invalid key id hints", () => {
    const b = signedBy(w.coordinator);
    expect(reasonOf(() => verify(rewrapEnvelope(b, { keyId: "" }), w))).toBe(RejectReason.KEY_ID_INVALID);
    expect(reasonOf(() => verify(rewrapEnvelope(b, { keyId: "a".repeat(65) }), w))).toBe(RejectReason.KEY_ID_INVALID);
    expect(reasonOf(() => verify(rewrapEnvelope(b, { keyId: w.coordinator.keyId.toUpperCase() }), w))).toBe(RejectReason.KEY_ID_INVALID);
    expect(reasonOf(() => verify(rewrapEnvelope(b, { keyId: "../../etc/passwd" }), w))).toBe(RejectReason.KEY_ID_INVALID);
    expect(reasonOf(() => verify(rewrapEnvelope(b, { keyId: "coordinator" }), w))).toBe(RejectReason.KEY_ID_INVALID);
  });
});

describe("key-set updates", () => {
  // Two tiers: `online` signs intents, `root` (offline, pinned) alone signs key sets.
  const root = generateSigningKey();
  const online = generateSigningKey();
  const added = generateSigningKey();
  const clock = new FakeClock(T0);
  const roots = [{ key: root }];
  const current = buildKeySet({ version: 5, issuedAtMs: T0 - DAY, members: [{ key: online }], roots });
  const setV = (version: number, extra: Partial<TrustedKeySet> = {}): TrustedKeySet => ({
    ...buildKeySet({ version, issuedAtMs: T0, members: [{ key: online }, { key: added, status: KeyStatus.KEY_STATUS_NEXT }], roots }),
    ...extra,
  });
  const apply = (signed: SignedKeySet): RejectReason | "accepted" => reasonOf(() => applyKeySetUpdate(current, signed, clock));

  it("accepts version N+1 signed by the root key (the added intent key does not sign)", () => {
    expect(apply(signKeySet(setV(6), [root]))).toBe("accepted");
    const store = new TrustedKeyStore(current).update(signKeySet(setV(6), [root]), clock);
    expect(store.version).toBe(6);
  });

  it("refuses a skipped version (N+2)", () => {
    expect(apply(signKeySet(setV(7), [root]))).toBe(RejectReason.KEYSET_VERSION);
  });

  it("refuses a rollback (N−1) and a replay of the current version (N)", () => {
    expect(apply(signKeySet(setV(4), [root]))).toBe(RejectReason.KEYSET_VERSION);
    expect(apply(signKeySet(setV(5), [root]))).toBe(RejectReason.KEYSET_VERSION);
  });

  it("refuses an update signed only by the new key, or by the online key with the new one", () => {
    expect(apply(signKeySet(setV(6), [added]))).toBe(RejectReason.KEYSET_UNKNOWN_ROOT);
    expect(apply(signKeySet(setV(6), [online, added]))).toBe(RejectReason.KEYSET_NOT_ROOT_SIGNED);
    const rogue = generateSigningKey();
    const takeover = buildKeySet({ version: 6, issuedAtMs: T0, members: [{ key: rogue }], roots: [{ key: generateSigningKey() }] });
    expect(apply(signKeySet(takeover, [rogue]))).toBe(RejectReason.KEYSET_UNKNOWN_ROOT);
  });

  it("refuses an update that adds a root without that root's signature", () => {
    const newRoot = generateSigningKey();
    expect(apply(signKeySet(setV(6, { rootKeys: [...current.rootKeys, ...buildKeySet({ version: 1, issuedAtMs: T0, members: [{ key: online }], roots: [{ key: newRoot }] }).rootKeys] }), [root]))).toBe(
      RejectReason.KEYSET_ROOT_CHANGE,
    );
  });

  it("refuses an expired update and one issued in the future", () => {
    const expired = buildKeySet({ version: 6, issuedAtMs: T0 - 10 * DAY, expiresAtMs: T0 - 1, members: [{ key: online }], roots });
    expect(apply(signKeySet(expired, [root]))).toBe(RejectReason.EXPIRED);
    const future = buildKeySet({ version: 6, issuedAtMs: T0 + DAY, members: [{ key: online }], roots });
    expect(apply(signKeySet(future, [root]))).toBe(RejectReason.NOT_YET_VALID);
  });

  it("refuses updates vouched for by root keys that are not active now", () => {
    const revokedRoot = buildKeySet({ version: 5, issuedAtMs: T0 - DAY, members: [{ key: online }], roots: [{ key: root, status: KeyStatus.KEY_STATUS_REVOKED }] });
    expect(reasonOf(() => applyKeySetUpdate(revokedRoot, signKeySet(setV(6), [root]), clock))).toBe(RejectReason.KEY_REVOKED);
    const outOfWindow = buildKeySet({ version: 5, issuedAtMs: T0 - 20 * DAY, members: [{ key: online }], roots: [{ key: root, notBeforeMs: 0, notAfterMs: T0 - 1 }] });
    expect(reasonOf(() => applyKeySetUpdate(outOfWindow, signKeySet(setV(6), [root]), clock))).toBe(RejectReason.KEY_NOT_VALID_NOW);
  });

  it("refuses tampered payloads, bad signature shapes and other container versions", () => {
    const good = signKeySet(setV(6), [root]);
    const flipped = Buffer.from(good.payload);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    expect(apply({ ...good, payload: flipped })).toBe(RejectReason.BAD_SIGNATURE);
    expect(apply({ ...good, version: 2 })).toBe(RejectReason.ENVELOPE_VERSION);
    expect(apply({ ...good, version: 0 })).toBe(RejectReason.ENVELOPE_VERSION);
    expect(apply({ ...good, signatures: [] })).toBe(RejectReason.ENVELOPE_MALFORMED);
    expect(apply({ ...good, signatures: [{ keyId: root.keyId, signature: Buffer.alloc(63) }] })).toBe(RejectReason.SIGNATURE_LENGTH);
    expect(apply({ ...good, signatures: [good.signatures[0]!, good.signatures[0]!] })).toBe(RejectReason.ENVELOPE_MALFORMED);
  });

  it("refuses a key set signed as an intent (domain separation)", () => {
    const payload = Buffer.from(TrustedKeySet.encode(setV(6)).finish());
    const asIntent = sign(null, pae("intent", payload), root.privateKey);
    expect(apply({ version: 1, payload, signatures: [{ keyId: root.keyId, signature: asIntent }] })).toBe(RejectReason.BAD_SIGNATURE);
    // The other way round: a key-set signature over intent bytes does not make an intent.
    const intentBytes = encodeIntent(intentFor(online));
    const ksSig = sign(null, pae("keyset", intentBytes), online.privateKey);
    const posing = SignedEnvelope.encode({ version: 1, keyId: online.keyId, payload: Buffer.from(intentBytes), signature: ksSig }).finish();
    expect(reasonOf(() => verify(posing, { store: new TrustedKeyStore(current), clock }))).toBe(RejectReason.BAD_SIGNATURE);
    // A root key is not an intent key: an intent it signs is from an unknown key.
    const rootIntent = Buffer.from(encodeIntent(intentFor(root)));
    const byRoot = SignedEnvelope.encode({ version: 1, keyId: root.keyId, payload: rootIntent, signature: sign(null, pae("intent", rootIntent), root.privateKey) }).finish();
    expect(reasonOf(() => verify(byRoot, { store: new TrustedKeyStore(current), clock }))).toBe(RejectReason.UNKNOWN_KEY);
  });
});
