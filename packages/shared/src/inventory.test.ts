// Inventory size: a host with MAX_INVENTORY_LANES realistic lanes fits its own envelope cap (which is larger
// than an intent's and below the agents' NATS max_payload); one byte over the cap is refused before anything
// is decoded.
import { sign } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FakeClock } from "./clock.js";
import { pae } from "./envelope.js";
import { RejectReason } from "./errors.js";
import { SignedEnvelope } from "./gen/lanekeeper/v1/envelope.js";
import { InventorySnapshot } from "./gen/lanekeeper/v1/inventory.js";
import { Backend, Health, LaneMode, LaneObservation, LaneState, UnmanagedRunner } from "./gen/lanekeeper/v1/lane.js";
import { decodeInventorySnapshot, signInventory, verifyInventory } from "./inventory.js";
import { generateSigningKey, publicKeyFromRaw } from "./keys.js";
import { canonicalLabels } from "./labels.js";
import {
  AGENT_NATS_MAX_PAYLOAD_BYTES,
  MAX_ALLOWLIST_ENTRIES,
  MAX_INTENT_ENVELOPE_BYTES,
  MAX_INVENTORY_ENVELOPE_BYTES,
  MAX_INVENTORY_LANES,
  MAX_INVENTORY_UNMANAGED,
} from "./limits.js";
import { reasonOf } from "@lanekeeper/testing";

afterEach(() => vi.restoreAllMocks());

const HOST = "build-host-0042";
const NOW = 1_800_000_000_000;
const key = generateSigningKey();
const resolve = (keyId: string) => (keyId === key.keyId ? { hostId: HOST, publicKey: publicKeyFromRaw(key.publicKey) } : undefined);

/** A realistic large lane: container backend, a 90-character image, nine labels, runner id and name. */
function lane(i: number): LaneObservation {
  const laneId = `linux-x64-${i.toString(16).padStart(6, "0")}`;
  return LaneObservation.fromPartial({
    laneId,
    scope: "acme-platform/monorepo-services",
    pool: "linux-x64-large",
    backend: Backend.BACKEND_CONTAINER,
    mode: LaneMode.LANE_MODE_EPHEMERAL,
    runtimeName: `lanekeeper-lane-${laneId}`,
    state: LaneState.LANE_STATE_RUNNING,
    health: Health.HEALTH_HEALTHY,
    jobRunning: true,
    runnerId: 123_456_789,
    labels: canonicalLabels({ laneId, hostId: HOST, pool: "linux-x64-large", capabilityLabels: ["linux", "x64", "gpu", "docker", "large"] }),
    runnerVersion: "2.330.0",
    image: `ghcr.io/acme-platform/runner-images/ubuntu@sha256:${"a".repeat(64)}`,
    stateSinceMs: NOW,
    restartsInWindow: 1,
    runnerName: laneId,
  });
}

function unmanaged(i: number): UnmanagedRunner {
  return UnmanagedRunner.fromPartial({
    kind: "systemd-unit",
    name: `actions.runner.acme-platform-monorepo-services.${HOST}-runner-${i}.service`,
    runnerName: `${HOST}-runner-${i}`,
    githubUrl: "https://github.com/acme-platform/monorepo-services",
    reason: "NO_MARKER",
    state: "active",
  });
}

/** The fullest realistic inventory: every lane and unmanaged runner the caps allow, and a full allowlist. */
function fullSnapshot(padding = ""): InventorySnapshot {
  const lanes = Array.from({ length: MAX_INVENTORY_LANES }, (_, i) => lane(i));
  lanes[0] = { ...lanes[0]!, recoveryNote: padding };
  return InventorySnapshot.fromPartial({
    hostId: HOST,
    snapshotSeq: NOW,
    takenAtMs: NOW,
    agentVersion: "0.1.0",
    controlEnabled: true,
    lanes,
    unmanaged: Array.from({ length: MAX_INVENTORY_UNMANAGED }, (_, i) => unmanaged(i)),
    capabilities: { os: "linux", arch: "x64", cores: 128, memoryBytes: 2 ** 40, diskFreeBytes: 2 ** 42, containerEngine: "podman", gpus: ["nvidia a100"], kernel: "6.1.0-18-amd64" },
    intentHwm: 1_000_000_000,
    keysetVersion: 12,
    allowlist: {
      scopes: Array.from({ length: MAX_ALLOWLIST_ENTRIES }, (_, i) => `acme-platform/service-${i}`),
      pools: Array.from({ length: MAX_ALLOWLIST_ENTRIES }, (_, i) => `linux-pool-${i}`),
      backends: ["systemd", "container"],
      images: Array.from({ length: 8 }, (_, i) => `ghcr.io/acme-platform/runner-images/ubuntu-${i}@sha256:${"b".repeat(64)}`),
      actions: ["create", "drain", "undrain", "start", "stop", "restart", "remove", "hold", "release", "arm"],
      maxLanes: MAX_INVENTORY_LANES,
    },
  });
}

/** Sign without the signer's size check, so the receiving side's cap can be tested. */
function signRaw(payload: Uint8Array): Uint8Array {
  const signature = sign(null, pae("inventory", payload), key.privateKey);
  return SignedEnvelope.encode({ version: 1, keyId: key.keyId, payload: Buffer.from(payload), signature }).finish();
}


describe("inventory size", () => {
  it("sits between the intent cap and the agents' NATS max_payload", () => {
    expect(MAX_INVENTORY_ENVELOPE_BYTES).toBeGreaterThan(MAX_INTENT_ENVELOPE_BYTES);
    expect(MAX_INVENTORY_ENVELOPE_BYTES).toBeLessThanOrEqual(AGENT_NATS_MAX_PAYLOAD_BYTES);
  });

  it("a host with MAX_INVENTORY_LANES realistic lanes, the most unmanaged runners and a full allowlist is signed and verified", () => {
    const bytes = signInventory(fullSnapshot(), key);
    expect(bytes.length).toBeGreaterThan(MAX_INTENT_ENVELOPE_BYTES);
    expect(bytes.length).toBeLessThanOrEqual(MAX_INVENTORY_ENVELOPE_BYTES);
    const v = verifyInventory(bytes, resolve, new FakeClock(NOW));
    expect(v.snapshot.lanes).toHaveLength(MAX_INVENTORY_LANES);
    expect(v.snapshot.unmanaged).toHaveLength(MAX_INVENTORY_UNMANAGED);
  });

  it("an inventory of exactly the cap is verified; one byte over is refused before any decoding", () => {
    const base = signInventory(fullSnapshot(), key).length;
    let pad = MAX_INVENTORY_ENVELOPE_BYTES - base;
    while (signRaw(InventorySnapshot.encode(fullSnapshot("n".repeat(pad))).finish()).length > MAX_INVENTORY_ENVELOPE_BYTES) pad--;
    const atCap = signInventory(fullSnapshot("n".repeat(pad)), key);
    expect(atCap.length).toBe(MAX_INVENTORY_ENVELOPE_BYTES);
    expect(verifyInventory(atCap, resolve, new FakeClock(NOW)).snapshot.lanes[0]!.recoveryNote).toHaveLength(pad);

    const over = signRaw(InventorySnapshot.encode(fullSnapshot("n".repeat(pad + 1))).finish());
    expect(over.length).toBe(MAX_INVENTORY_ENVELOPE_BYTES + 1);
    const envelopeDecode = vi.spyOn(SignedEnvelope, "decode");
    const snapshotDecode = vi.spyOn(InventorySnapshot, "decode");
    expect(reasonOf(() => verifyInventory(over, resolve, new FakeClock(NOW)))).toBe(RejectReason.ENVELOPE_TOO_LARGE);
    expect(envelopeDecode).not.toHaveBeenCalled();
    expect(snapshotDecode).not.toHaveBeenCalled();
    // The signer refuses to produce it in the first place.
    expect(reasonOf(() => signInventory(fullSnapshot("n".repeat(pad + 1)), key))).toBe(RejectReason.ENVELOPE_TOO_LARGE);
  });

  it("refuses snapshots over the count caps", () => {
    const tooMany = InventorySnapshot.fromPartial({ hostId: HOST, lanes: Array.from({ length: MAX_INVENTORY_LANES + 1 }, () => LaneObservation.fromPartial({ laneId: "l" })) });
    expect(reasonOf(() => decodeInventorySnapshot(InventorySnapshot.encode(tooMany).finish()))).toBe(RejectReason.PAYLOAD_MALFORMED);
    const bigAllowlist = InventorySnapshot.fromPartial({
      hostId: HOST,
      allowlist: { scopes: Array.from({ length: MAX_ALLOWLIST_ENTRIES + 1 }, (_, i) => `acme/r${i}`) },
    });
    expect(reasonOf(() => decodeInventorySnapshot(InventorySnapshot.encode(bigAllowlist).finish()))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });
});
