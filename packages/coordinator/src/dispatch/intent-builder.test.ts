import {
  Backend,
  generateSealingKey,
  generateSigningKey,
  KeyStatus,
  LaneMode,
  MAX_INTENT_TTL_MS,
  openSecret,
  sealContext,
  TrustedKeyStore,
  verifyIntent,
  type LaneSpec,
} from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { buildSignedIntent, DispatchOptionsError } from "./intent-builder.js";
import { activateKey, announceKey, assertRootOf, initialKeySet, KeyRotationError, revokeKey, rotateRoot } from "./key-rotation.js";

const key = generateSigningKey();
const root = generateSigningKey();
const sealing = generateSealingKey();
const now = 1_800_000_000_000;
const spec: LaneSpec = {
  laneId: "lane-1",
  scope: "acme/api",
  pool: "linux-x64",
  backend: Backend.BACKEND_SYSTEMD,
  mode: LaneMode.LANE_MODE_PERSISTENT,
  labels: ["lk-managed", "lk-lane-lane-1", "lk-host-build01", "lk-pool-linux-x64"],
  runnerGroup: "",
  githubUrl: "https://github.com/acme/api",
  runnerVersion: "2.330.0",
  image: "",
  limits: undefined,
  runnerDownload: undefined,
};

describe("buildSignedIntent", () => {
  it("signs a verifiable intent with a fresh id, issued/not-before at now − slack, and a secret bound to the intent", () => {
    const a = buildSignedIntent({ hostId: "build01", hostSealingKey: sealing.publicKey, sequence: 7, action: { kind: "create", spec, registration: Buffer.from("tok") }, signingKey: key, nowMs: now });
    const b = buildSignedIntent({ hostId: "build01", hostSealingKey: sealing.publicKey, sequence: 8, action: { kind: "create", spec, registration: Buffer.from("tok") }, signingKey: key, nowMs: now });
    expect(a.intent.intentId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.intent.intentId).not.toBe(b.intent.intentId);
    expect(a.intent.issuedAtMs).toBe(now - 5_000);
    expect(a.intent.notBeforeMs).toBe(now - 5_000);
    expect(a.intent.expiresAtMs).toBe(now + 60_000);
    const keys = new TrustedKeyStore(initialKeySet(key, root, { nowMs: now - 1_000 }));
    const v = verifyIntent(a.envelope, { hostId: "build01", subjectHost: "build01", keys, clock: { now: () => now } });
    expect(v.digest.equals(a.digest)).toBe(true);
    const sealed = a.intent.action?.$case === "create" ? a.intent.action.value.registration : undefined;
    expect(openSecret(sealing, sealed!, sealContext({ purpose: "registration", hostId: "build01", laneId: "lane-1", intentId: a.intent.intentId })).toString()).toBe("tok");
    expect(() => openSecret(sealing, sealed!, sealContext({ purpose: "registration", hostId: "build01", laneId: "lane-1", intentId: b.intent.intentId }))).toThrow();
  });

  it("refuses a lifetime (ttl + slack) above MAX_INTENT_TTL_MS", () => {
    expect(() =>
      buildSignedIntent({ hostId: "build01", hostSealingKey: sealing.publicKey, sequence: 1, action: { kind: "start", laneId: "lane-1" }, signingKey: key, nowMs: now, ttlMs: MAX_INTENT_TTL_MS }),
    ).toThrow(DispatchOptionsError);
  });
});

describe("key-set helpers", () => {
  it("announce, activate and revoke move statuses and versions as documented", () => {
    const next = generateSigningKey();
    const v1 = initialKeySet(key, root, { nowMs: now });
    const v2 = announceKey(v1, next, { nowMs: now });
    expect(v2.version).toBe(2);
    expect(v2.keys.map((k) => k.status)).toEqual([KeyStatus.KEY_STATUS_ACTIVE, KeyStatus.KEY_STATUS_NEXT]);
    const v3 = activateKey(v2, next.keyId, { nowMs: now });
    expect(v3.keys.map((k) => k.status)).toEqual([KeyStatus.KEY_STATUS_RETIRED, KeyStatus.KEY_STATUS_ACTIVE]);
    expect(v3.keys[0]!.notAfterMs).toBe(now + 150_000);
    const v4 = revokeKey(v3, key.keyId, { nowMs: now, hwmFloor: 99 });
    expect(v4.keys[0]!.status).toBe(KeyStatus.KEY_STATUS_REVOKED);
    expect(v4.hwmFloor).toBe(99);
    expect(() => activateKey(v4, key.keyId, { nowMs: now })).toThrow(KeyRotationError);
    expect(() => announceKey(v4, next, { nowMs: now })).toThrow(KeyRotationError);
    // Every step keeps the pinned root.
    expect(v4.rootKeys.map((r) => r.keyId)).toEqual([root.keyId]);
  });

  it("rotateRoot names the new root only; assertRootOf tells roots from intent keys", () => {
    const newRoot = generateSigningKey();
    const v1 = initialKeySet(key, root, { nowMs: now });
    expect(() => initialKeySet(key, key, { nowMs: now })).toThrow(KeyRotationError);
    assertRootOf(v1, root);
    expect(() => assertRootOf(v1, key)).toThrow(KeyRotationError);
    const v2 = rotateRoot(v1, newRoot, { nowMs: now });
    expect(v2.version).toBe(2);
    expect(v2.rootKeys.map((r) => r.keyId)).toEqual([newRoot.keyId]);
    expect(v2.keys).toEqual(v1.keys);
    expect(() => rotateRoot(v2, newRoot, { nowMs: now })).toThrow(KeyRotationError);
    expect(() => rotateRoot(v2, key, { nowMs: now })).toThrow(KeyRotationError);
    expect(() => assertRootOf(v2, root)).toThrow(KeyRotationError);
  });
});
