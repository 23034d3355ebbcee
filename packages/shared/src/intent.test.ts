import { describe, expect, it } from "vitest";
import { FakeClock } from "./clock.js";
import { RejectError, RejectReason } from "./errors.js";
import { IntentPayload } from "./gen/lanekeeper/v1/intent.js";
import { Backend, LaneMode } from "./gen/lanekeeper/v1/lane.js";
import {
  ACTION_KINDS,
  actionKind,
  type IntentAction,
  buildIntent,
  decodeIntentPayload,
  encodeIntent,
  laneIdOf,
  newIntentId,
  signIntent,
  validateIntentNames,
  verifyIntent,
} from "./intent.js";
import { generateSigningKey } from "./keys.js";
import { buildKeySet, TrustedKeyStore } from "./keyset.js";
import { canonicalLabels } from "./labels.js";
import { reasonOf } from "@lanekeeper/testing";


const coordinator = generateSigningKey();
const clock = new FakeClock();
const keys = new TrustedKeyStore(buildKeySet({ version: 1, members: [{ key: coordinator }], issuedAtMs: clock.now() }));
const ctx = { hostId: "build01", subjectHost: "build01", keys, clock };

function spec(overrides: Record<string, unknown> = {}): IntentAction {
  return {
    $case: "create",
    value: {
      spec: {
        laneId: "l1",
        scope: "acme/api",
        pool: "linux",
        backend: Backend.BACKEND_SYSTEMD,
        mode: LaneMode.LANE_MODE_PERSISTENT,
        labels: canonicalLabels({ laneId: "l1", hostId: "build01", pool: "linux", capabilityLabels: ["x64"] }),
        runnerGroup: "",
        githubUrl: "https://github.com/acme/api",
        runnerVersion: "2.330.0",
        image: "",
        limits: undefined,
        runnerDownload: undefined,
        ...overrides,
      },
      registration: undefined,
    },
  };
}

describe("intents", () => {
  it("build → sign → verify round-trips", () => {
    const intent = buildIntent({
      audienceHost: "build01",
      issuer: coordinator,
      sequence: 7,
      action: { $case: "restart", value: { laneId: "l1", force: false } },
      nowMs: clock.now(),
      operationId: "op-1",
    });
    expect(intent.intentId).toMatch(/^[0-9a-f]{32}$/);
    expect(intent.expiresAtMs - intent.issuedAtMs).toBe(60_000);
    const v = verifyIntent(signIntent(intent, coordinator), ctx);
    expect(v.intent).toEqual(intent);
    expect(v.keyId).toBe(coordinator.keyId);
    expect(v.digest).toHaveLength(32);
    expect(actionKind(v.intent)).toBe("restart");
    expect(laneIdOf(v.intent)).toBe("l1");
  });

  it("names every action kind and its lane", () => {
    expect(ACTION_KINDS).toHaveLength(11);
    const create = buildIntent({ audienceHost: "build01", issuer: coordinator, sequence: 1, action: spec(), nowMs: clock.now() });
    expect(laneIdOf(create)).toBe("l1");
    expect(() => actionKind({ ...create, action: undefined })).toThrow(RejectError);
    expect(newIntentId()).not.toBe(newIntentId());
  });

  it("refuses to sign with a key that is not the issuer", () => {
    const intent = buildIntent({ audienceHost: "build01", issuer: coordinator, sequence: 1, action: spec(), nowMs: clock.now() });
    expect(reasonOf(() => signIntent(intent, generateSigningKey()))).toBe(RejectReason.ISSUER_MISMATCH);
  });

  it("checks field caps while decoding", () => {
    const base = buildIntent({ audienceHost: "build01", issuer: coordinator, sequence: 1, action: spec(), nowMs: clock.now() });
    const dec = (m: Partial<IntentPayload>): RejectReason | "none" => reasonOf(() => decodeIntentPayload(encodeIntent({ ...base, ...m })));
    expect(dec({})).toBe("none");
    expect(dec({ intentId: "ABC" })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec({ sequence: 0 })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec({ audienceHost: "h".repeat(64) })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec({ paramsSha256: Buffer.alloc(31) })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec({ action: undefined })).toBe(RejectReason.NO_ACTION);
    expect(dec({ action: spec({ backend: Backend.BACKEND_UNSPECIFIED }) })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec({ action: spec({ mode: 9 }) })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec({ action: spec({ labels: Array.from({ length: 33 }, (_, i) => `l${i}`) }) })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec({ action: { $case: "hold", value: { laneId: "l1", reason: "r".repeat(1025) } } })).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(dec({ action: { $case: "create", value: { spec: undefined, registration: undefined } } })).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("validates names for step 8, including the canonical identity labels", () => {
    const mk = (action: IntentAction): IntentPayload =>
      buildIntent({ audienceHost: "build01", issuer: coordinator, sequence: 1, action, nowMs: clock.now() });
    expect(reasonOf(() => validateIntentNames(mk(spec()), "build01"))).toBe("none");
    expect(reasonOf(() => validateIntentNames(mk({ $case: "stop", value: { laneId: "../x", force: false } }), "build01"))).toBe(
      RejectReason.INVALID_NAME,
    );
    expect(reasonOf(() => validateIntentNames(mk(spec({ scope: "acme/../x" })), "build01"))).toBe(RejectReason.INVALID_NAME);
    expect(reasonOf(() => validateIntentNames(mk(spec({ runnerVersion: "../../bin" })), "build01"))).toBe(RejectReason.INVALID_NAME);
    expect(
      reasonOf(() => validateIntentNames(mk(spec({ backend: Backend.BACKEND_CONTAINER, image: "ubuntu:latest" })), "build01")),
    ).toBe(RejectReason.INVALID_NAME);
    // Ownership on another agent's object: labels naming another host.
    const foreign = canonicalLabels({ laneId: "l1", hostId: "build02", pool: "linux", capabilityLabels: [] });
    expect(reasonOf(() => validateIntentNames(mk(spec({ labels: foreign })), "build01"))).toBe(RejectReason.INVALID_LABEL);
    const extra = [...canonicalLabels({ laneId: "l1", hostId: "build01", pool: "linux", capabilityLabels: [] }), "lk-draining"];
    expect(reasonOf(() => validateIntentNames(mk(spec({ labels: extra })), "build01"))).toBe(RejectReason.INVALID_LABEL);
    expect(reasonOf(() => validateIntentNames(mk(spec({ labels: ["linux", "a,b"] })), "build01"))).toBe(RejectReason.INVALID_LABEL);
  });
});
