import { describe, expect, it } from "vitest";
import { FakeClock } from "./clock.js";
import { RejectError, RejectReason } from "./errors.js";
import { KeyStatus, TrustedKeySet } from "./gen/lanekeeper/v1/envelope.js";
import { generateSigningKey } from "./keys.js";
import {
  applyKeySetUpdate,
  buildKeySet,
  decodeSignedKeySet,
  encodeSignedKeySet,
  signKeySet,
  TrustedKeyStore,
  validateKeySet,
} from "./keyset.js";
import { reasonOf } from "@lanekeeper/testing";


const DAY = 86_400_000;

describe("TrustedKeyStore", () => {
  const clock = new FakeClock();
  const a = generateSigningKey();
  const b = generateSigningKey();
  const r = generateSigningKey();
  const set = buildKeySet({
    version: 3,
    issuedAtMs: clock.now(),
    members: [
      { key: a },
      { key: b, status: KeyStatus.KEY_STATUS_NEXT, notBeforeMs: clock.now() + DAY },
      { key: r, status: KeyStatus.KEY_STATUS_REVOKED },
    ],
  });
  const store = new TrustedKeyStore(set);

  it("looks keys up by id, status and window", () => {
    expect(store.version).toBe(3);
    expect(store.lookup(a.keyId, clock.now()).publicKey.equals(a.publicKey)).toBe(true);
    expect(reasonOf(() => store.lookup("f".repeat(64), clock.now()))).toBe(RejectReason.UNKNOWN_KEY);
    expect(reasonOf(() => store.lookup(r.keyId, clock.now()))).toBe(RejectReason.KEY_REVOKED);
    expect(reasonOf(() => store.lookup(b.keyId, clock.now()))).toBe(RejectReason.KEY_NOT_VALID_NOW);
    expect(reasonOf(() => store.lookup(b.keyId, clock.now() + DAY))).toBe("none");
    expect(reasonOf(() => store.lookup(a.keyId, clock.now() + 91 * DAY))).toBe(RejectReason.KEY_NOT_VALID_NOW);
  });

  it("is immutable", () => {
    expect(Object.isFrozen(store.set)).toBe(true);
    expect(Object.isFrozen(store.set.keys)).toBe(true);
    set.keys[0]!.status = KeyStatus.KEY_STATUS_REVOKED;
    expect(reasonOf(() => store.lookup(a.keyId, clock.now()))).toBe("none");
    set.keys[0]!.status = KeyStatus.KEY_STATUS_ACTIVE;
  });

  it("refuses malformed sets", () => {
    const good = buildKeySet({ version: 1, issuedAtMs: 1000, members: [{ key: a }] });
    const bad = (m: Partial<TrustedKeySet>): RejectReason | "none" => reasonOf(() => validateKeySet({ ...good, ...m }));
    expect(bad({})).toBe("none");
    expect(bad({ version: 0 })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(bad({ keys: [] })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(bad({ keys: [good.keys[0]!, good.keys[0]!] })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(bad({ keys: [{ ...good.keys[0]!, keyId: b.keyId }] })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(bad({ keys: [{ ...good.keys[0]!, status: KeyStatus.KEY_STATUS_UNSPECIFIED }] })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(bad({ keys: [{ ...good.keys[0]!, notAfterMs: 0 }] })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(bad({ expiresAtMs: 999 })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(() => new TrustedKeyStore({ ...good, keys: [] })).toThrow(RejectError);
  });
});

describe("key-set rotation", () => {
  it("walks prepare → activate → retire → revoke, every step signed by the root key", () => {
    const clock = new FakeClock();
    const root = generateSigningKey();
    const old = generateSigningKey();
    const next = generateSigningKey();
    const roots = [{ key: root }];
    let store = new TrustedKeyStore(buildKeySet({ version: 1, issuedAtMs: clock.now(), members: [{ key: old }], roots }));
    // Prepare: announce the new key, signed by the root (the intent keys never sign key sets).
    const v2 = buildKeySet({ version: 2, issuedAtMs: clock.now(), members: [{ key: old }, { key: next, status: KeyStatus.KEY_STATUS_NEXT }], roots });
    expect(reasonOf(() => store.update(signKeySet(v2, [old, next]), clock))).toBe(RejectReason.KEYSET_NOT_ROOT_SIGNED);
    store = store.update(decodeSignedKeySet(encodeSignedKeySet(signKeySet(v2, [root]))), clock);
    expect(store.version).toBe(2);
    clock.advance(DAY);
    const v3 = buildKeySet({ version: 3, issuedAtMs: clock.now(), members: [{ key: old, status: KeyStatus.KEY_STATUS_RETIRED }, { key: next }], roots });
    store = store.update(signKeySet(v3, [root]), clock);
    const v4 = buildKeySet({ version: 4, issuedAtMs: clock.now(), members: [{ key: next }], roots });
    expect(reasonOf(() => store.update(signKeySet(v4, [next]), clock))).toBe(RejectReason.KEYSET_NOT_ROOT_SIGNED);
    store = store.update(signKeySet(v4, [root]), clock);
    expect(store.version).toBe(4);
    expect(reasonOf(() => store.lookup(old.keyId, clock.now()))).toBe(RejectReason.UNKNOWN_KEY);
    // A root key never verifies an intent.
    expect(reasonOf(() => store.lookup(root.keyId, clock.now()))).toBe(RejectReason.UNKNOWN_KEY);
  });

  it("carries hwmFloor through", () => {
    const clock = new FakeClock();
    const k = generateSigningKey();
    const root = generateSigningKey();
    const v1 = buildKeySet({ version: 1, issuedAtMs: clock.now(), members: [{ key: k }], roots: [{ key: root }] });
    const v2 = buildKeySet({ version: 2, issuedAtMs: clock.now(), members: [{ key: k }], hwmFloor: 500, roots: [{ key: root }] });
    expect(applyKeySetUpdate(v1, signKeySet(v2, [root]), clock).hwmFloor).toBe(500);
  });

  it("rotates the root: the old root names the new one and both sign; the last root cannot be dropped", () => {
    const clock = new FakeClock();
    const k = generateSigningKey();
    const oldRoot = generateSigningKey();
    const newRoot = generateSigningKey();
    const v1 = buildKeySet({ version: 1, issuedAtMs: clock.now(), members: [{ key: k }], roots: [{ key: oldRoot }] });
    const v2 = buildKeySet({ version: 2, issuedAtMs: clock.now(), members: [{ key: k }], roots: [{ key: newRoot }] });
    expect(reasonOf(() => applyKeySetUpdate(v1, signKeySet(v2, [oldRoot]), clock))).toBe(RejectReason.KEYSET_ROOT_CHANGE);
    expect(reasonOf(() => applyKeySetUpdate(v1, signKeySet(v2, [newRoot]), clock))).toBe(RejectReason.KEYSET_UNKNOWN_ROOT);
    const after = applyKeySetUpdate(v1, signKeySet(v2, [oldRoot, newRoot]), clock);
    expect(after.rootKeys.map((r) => r.keyId)).toEqual([newRoot.keyId]);
    const v3 = buildKeySet({ version: 3, issuedAtMs: clock.now(), members: [{ key: k }], roots: [{ key: newRoot }] });
    expect(reasonOf(() => applyKeySetUpdate(after, signKeySet(v3, [oldRoot]), clock))).toBe(RejectReason.KEYSET_UNKNOWN_ROOT);
    const noRoot = buildKeySet({ version: 3, issuedAtMs: clock.now(), members: [{ key: k }] });
    expect(reasonOf(() => applyKeySetUpdate(after, signKeySet(noRoot, [newRoot]), clock))).toBe(RejectReason.KEYSET_ROOT_CHANGE);
  });

  it("a set that pins no root can never be updated", () => {
    const clock = new FakeClock();
    const k = generateSigningKey();
    const v1 = buildKeySet({ version: 1, issuedAtMs: clock.now(), members: [{ key: k }] });
    // A key in both tiers is malformed: the root would verify intents like an online key.
    expect(reasonOf(() => buildKeySet({ version: 2, issuedAtMs: clock.now(), members: [{ key: k }], roots: [{ key: k }] }))).toBe(RejectReason.PAYLOAD_MALFORMED);
    const v2b = buildKeySet({ version: 2, issuedAtMs: clock.now(), members: [{ key: k }], hwmFloor: 9 });
    expect(reasonOf(() => applyKeySetUpdate(v1, signKeySet(v2b, [k]), clock))).toBe(RejectReason.KEYSET_NOT_ROOT_SIGNED);
  });
});
