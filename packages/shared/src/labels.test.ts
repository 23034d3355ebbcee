import { describe, expect, it } from "vitest";
import { RejectError, RejectReason } from "./errors.js";
import {
  DRAINING_LABEL,
  MANAGED_LABEL,
  canonicalLabels,
  carriesLaneIdentity,
  drainingLabels,
  parseDrainingLabels,
  identityLabels,
  isManagedLabelSet,
  isReservedLabel,
  parseIdentityLabels,
} from "./labels.js";

const id = { laneId: "l1", hostId: "build01", pool: "linux-x64" };

describe("canonical labels", () => {
  it("builds identity labels", () => {
    expect(identityLabels(id)).toEqual(["lk-managed", "lk-lane-l1", "lk-host-build01", "lk-pool-linux-x64"]);
  });

  it("appends capability labels and refuses reserved ones", () => {
    expect(canonicalLabels({ ...id, capabilityLabels: ["linux", "x64"] })).toEqual([
      "lk-managed",
      "lk-lane-l1",
      "lk-host-build01",
      "lk-pool-linux-x64",
      "linux",
      "x64",
    ]);
    expect(() => canonicalLabels({ ...id, capabilityLabels: ["lk-draining"] })).toThrow(RejectError);
    expect(() => canonicalLabels({ ...id, capabilityLabels: ["Lk-x"] })).toThrow(/reserved/);
    expect(() => canonicalLabels({ ...id, capabilityLabels: ["a,b"] })).toThrow(/not allowed/);
    const many = Array.from({ length: 29 }, (_, i) => `c${i}`);
    try {
      canonicalLabels({ ...id, capabilityLabels: many });
      expect.unreachable();
    } catch (err) {
      expect((err as RejectError).reason).toBe(RejectReason.INVALID_LABEL);
    }
  });

  it("validates the ids it embeds", () => {
    expect(() => identityLabels({ ...id, laneId: "../x" })).toThrow(RejectError);
    expect(() => identityLabels({ ...id, hostId: "Build01" })).toThrow(RejectError);
  });

  it("a draining lane keeps only its unique lane label and lk-draining: nothing a workflow can target", () => {
    expect(drainingLabels(id)).toEqual(["lk-lane-l1", DRAINING_LABEL]);
    for (const l of drainingLabels(id)) expect(l.startsWith("lk-pool-") || l.startsWith("lk-host-") || l === MANAGED_LABEL).toBe(false);
    expect(() => drainingLabels({ laneId: "../x" })).toThrow(RejectError);
  });

  it("reads the lane id from the reduced draining set, and nothing else", () => {
    expect(parseDrainingLabels(drainingLabels(id))).toBe("l1");
    expect(parseDrainingLabels([DRAINING_LABEL, "lk-lane-l1"])).toBe("l1");
    expect(parseDrainingLabels(["lk-lane-l1"])).toBeUndefined();
    expect(parseDrainingLabels([...drainingLabels(id), "linux"])).toBeUndefined();
    expect(parseDrainingLabels([...drainingLabels(id), "lk-lane-l2"])).toBeUndefined();
    expect(parseDrainingLabels(["lk-host-l1", DRAINING_LABEL])).toBeUndefined();
    expect(parseDrainingLabels(["lk-lane-L1", DRAINING_LABEL])).toBeUndefined();
  });

  it("carriesLaneIdentity accepts the full identity or the lane's own draining set", () => {
    expect(carriesLaneIdentity(canonicalLabels({ ...id, capabilityLabels: ["linux"] }), id)).toBe(true);
    expect(carriesLaneIdentity([...identityLabels(id), DRAINING_LABEL], id)).toBe(true);
    expect(carriesLaneIdentity(drainingLabels(id), id)).toBe(true);
    expect(carriesLaneIdentity(drainingLabels({ laneId: "l2" }), id)).toBe(false);
    expect(carriesLaneIdentity([...identityLabels(id), "lk-host-build02"], id)).toBe(false);
    expect(carriesLaneIdentity(identityLabels(id).filter((l) => l !== MANAGED_LABEL), id)).toBe(false);
  });

  it("recognizes managed label sets", () => {
    const labels = canonicalLabels({ ...id, capabilityLabels: ["linux"] });
    expect(parseIdentityLabels(labels)).toEqual(id);
    expect(isManagedLabelSet(labels)).toBe(true);
    expect(isManagedLabelSet(labels, { laneId: "l1", hostId: "build01" })).toBe(true);
    expect(isManagedLabelSet(labels, { hostId: "build02" })).toBe(false);
    expect(isManagedLabelSet(labels, { laneId: "l2" })).toBe(false);
    expect(isManagedLabelSet(labels.filter((l) => l !== MANAGED_LABEL))).toBe(false);
    expect(isManagedLabelSet([...labels, "lk-lane-l2"])).toBe(false);
    expect(isManagedLabelSet(labels.filter((l) => !l.startsWith("lk-pool-")))).toBe(false);
    expect(isManagedLabelSet(["LK-MANAGED", "lk-lane-l1", "lk-host-build01", "lk-pool-p"])).toBe(false);
    expect(isManagedLabelSet(["lk-managed", "lk-lane-L1", "lk-host-build01", "lk-pool-p"])).toBe(false);
    expect(isManagedLabelSet(["self-hosted", "linux"])).toBe(false);
  });

  it("knows the reserved prefix in any case", () => {
    expect(isReservedLabel("lk-x")).toBe(true);
    expect(isReservedLabel("LK-x")).toBe(true);
    expect(isReservedLabel("lkx")).toBe(false);
  });
});
