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
  it("walks prepare → activate → retire → revoke", () => {
    const clock = new FakeClock();
    const old = generateSigningKey();
    const next = generateSigningKey();
    let store = new TrustedKeyStore(buildKeySet({ version: 1, issuedAtMs: clock.now(), members: [{ key: old }] }));
    // Prepare: announce the new key, signed by the active old key and by the new key itself.
    const v2 = buildKeySet({
      version: 2,
      issuedAtMs: clock.now(),
      members: [{ key: old }, { key: next, status: KeyStatus.KEY_STATUS_NEXT }],
    });
    store = store.update(decodeSignedKeySet(encodeSignedKeySet(signKeySet(v2, [old, next]))), clock);
    expect(store.version).toBe(2);
    clock.advance(DAY);
    // Activate the new key, retire the old one; signed by the old active key (new key is not new any more).
    const v3 = buildKeySet({
      version: 3,
      issuedAtMs: clock.now(),
      members: [{ key: old, status: KeyStatus.KEY_STATUS_RETIRED }, { key: next }],
    });
    store = store.update(signKeySet(v3, [old]), clock);
    // Revoke the old key; now only the new key is active and may sign.
    const v4 = buildKeySet({ version: 4, issuedAtMs: clock.now(), members: [{ key: next }] });
    expect(reasonOf(() => store.update(signKeySet(v4, [old]), clock))).toBe(RejectReason.UNKNOWN_KEY);
    store = store.update(signKeySet(v4, [next]), clock);
    expect(store.version).toBe(4);
    expect(reasonOf(() => store.lookup(old.keyId, clock.now()))).toBe(RejectReason.UNKNOWN_KEY);
  });

  it("carries hwmFloor through", () => {
    const clock = new FakeClock();
    const k = generateSigningKey();
    const v1 = buildKeySet({ version: 1, issuedAtMs: clock.now(), members: [{ key: k }] });
    const v2 = buildKeySet({ version: 2, issuedAtMs: clock.now(), members: [{ key: k }], hwmFloor: 500 });
    expect(applyKeySetUpdate(v1, signKeySet(v2, [k]), clock).hwmFloor).toBe(500);
  });
});
