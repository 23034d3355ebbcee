// security-cases.md group 7: size. Envelopes over the limit are rejected before any decoding; huge repeated
// fields and overlong strings inside a correctly signed payload are rejected by the field caps.
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  Backend,
  canonicalLabels,
  IntentPayload,
  LaneMode,
  MAX_INTENT_ENVELOPE_BYTES,
  MAX_KEY_ID_CHARS,
  RejectReason,
  SignedEnvelope,
  signIntent,
} from "@lanekeeper/shared";
import { HOST, intentFor, reasonOf, rewrapEnvelope, signUnchecked, verify, world } from "./envelope-fixture.js";

afterEach(() => vi.restoreAllMocks());

describe("size limits", () => {
  const w = world();

  it("rejects one byte over the limit before decoding anything", () => {
    const decode = vi.spyOn(SignedEnvelope, "decode");
    // Garbage that would be ENVELOPE_MALFORMED if it were decoded.
    const over = Buffer.alloc(MAX_INTENT_ENVELOPE_BYTES + 1, 0xff);
    expect(reasonOf(() => verify(over, w))).toBe(RejectReason.ENVELOPE_TOO_LARGE);
    expect(decode).not.toHaveBeenCalled();
    const huge = Buffer.alloc(64 * 1024 * 1024);
    expect(reasonOf(() => verify(huge, w))).toBe(RejectReason.ENVELOPE_TOO_LARGE);
    expect(decode).not.toHaveBeenCalled();
  });

  it("decodes an envelope of exactly the limit", () => {
    const base = intentFor(w.coordinator);
    const withReason = (n: number): Uint8Array =>
      signUnchecked({ ...base, action: { $case: "hold", value: { laneId: "l1", reason: "r".repeat(n) } } }, w.coordinator);
    let n = MAX_INTENT_ENVELOPE_BYTES - withReason(0).length;
    while (withReason(n).length > MAX_INTENT_ENVELOPE_BYTES) n--;
    const bytes = withReason(n);
    expect(bytes.length).toBe(MAX_INTENT_ENVELOPE_BYTES);
    // Past the size gate and the signature check; refused by the hold-reason cap instead.
    expect(reasonOf(() => verify(bytes, w))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("rejects huge repeated fields in a signed payload", () => {
    const labels = [
      ...canonicalLabels({ laneId: "l1", hostId: HOST, pool: "p", capabilityLabels: [] }),
      ...Array.from({ length: 5000 }, (_, i) => `l${i}`),
    ];
    const intent = intentFor(w.coordinator, {
      action: {
        $case: "create",
        value: {
          spec: {
            laneId: "l1",
            scope: "acme/api",
            pool: "p",
            backend: Backend.BACKEND_SYSTEMD,
            mode: LaneMode.LANE_MODE_PERSISTENT,
            labels,
            runnerGroup: "",
            githubUrl: "",
            runnerVersion: "2.330.0",
            image: "",
            limits: undefined,
            runnerDownload: undefined,
          },
          registration: undefined,
        },
      },
    });
    const bytes = signUnchecked(intent, w.coordinator);
    expect(bytes.length).toBeLessThanOrEqual(MAX_INTENT_ENVELOPE_BYTES);
    expect(reasonOf(() => verify(bytes, w))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it.each([
    ["audience host", { audienceHost: "h".repeat(64) }],
    ["issuer key id", { issuerKeyId: "a".repeat(MAX_KEY_ID_CHARS + 1) }],
    ["operation id", { operationId: "o".repeat(129) }],
    ["forced by", { forcedBy: "f".repeat(129) }],
    ["intent id", { intentId: "a".repeat(33) }],
    ["lane id", { action: { $case: "stop" as const, value: { laneId: "l".repeat(64), force: false } } }],
    ["hold reason", { action: { $case: "hold" as const, value: { laneId: "l1", reason: "r".repeat(1025) } } }],
    [
      "sealed ciphertext",
      {
        action: {
          $case: "arm" as const,
          value: {
            laneId: "l1",
            jitConfig: { recipientKeyId: "a".repeat(64), ephemeralPublicKey: Buffer.alloc(32), nonce: Buffer.alloc(12), ciphertext: Buffer.alloc(17 * 1024) },
          },
        },
      },
    ],
  ] as [string, Partial<IntentPayload>][])("rejects an overlong %s in a signed payload", (_name, overrides) => {
    const bytes = signUnchecked(intentFor(w.coordinator, overrides), w.coordinator);
    expect(reasonOf(() => verify(bytes, w))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("rejects an overlong key id hint before looking anything up", () => {
    const bytes = signIntent(intentFor(w.coordinator), w.coordinator);
    expect(reasonOf(() => verify(rewrapEnvelope(bytes, { keyId: "a".repeat(10_000) }), w))).toBe(RejectReason.KEY_ID_INVALID);
  });

  it("refuses to sign more than the limit", () => {
    const hold = (n: number): IntentPayload => intentFor(w.coordinator, { action: { $case: "hold", value: { laneId: "l1", reason: "r".repeat(n) } } });
    expect(reasonOf(() => signIntent(hold(100), w.coordinator))).toBe("accepted");
    expect(reasonOf(() => signIntent(hold(MAX_INTENT_ENVELOPE_BYTES), w.coordinator))).toBe(RejectReason.ENVELOPE_TOO_LARGE);
  });
});
