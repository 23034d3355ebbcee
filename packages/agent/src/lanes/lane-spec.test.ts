import { describe, expect, it } from "vitest";
import { Backend, identityLabels, LaneMode, RejectReason, type LaneSpec } from "@lanekeeper/shared";
import { laneRecordFromSpec, validateGithubUrl, validateSecret } from "./lane-spec.js";

const spec = (patch: Partial<LaneSpec> = {}): LaneSpec => ({
  laneId: "l1",
  scope: "acme/api",
  pool: "p1",
  backend: Backend.BACKEND_SYSTEMD,
  mode: LaneMode.LANE_MODE_PERSISTENT,
  labels: [...identityLabels({ laneId: "l1", hostId: "h1", pool: "p1" }), "linux"],
  runnerGroup: "",
  githubUrl: "https://github.com/acme/api",
  runnerVersion: "2.330.0",
  image: "",
  limits: { cpuMillis: 0, memoryBytes: 0 },
  runnerDownload: undefined,
  ...patch,
});
const unit = (id: string): string => `lanekeeper-lane-${id}.service`;
const rejects = (s: LaneSpec, reason: RejectReason): void => {
  expect(() => laneRecordFromSpec(s, "h1", unit, 0)).toThrow(expect.objectContaining({ reason }));
};

describe("laneRecordFromSpec", () => {
  it("accepts a valid spec and binds the runtime name", () => {
    expect(laneRecordFromSpec(spec(), "h1", unit, 5)).toMatchObject({ laneId: "l1", hostId: "h1", runtimeName: "lanekeeper-lane-l1.service", createdAtMs: 5 });
  });

  it("refuses path traversal and option injection in the lane id (group 11)", () => {
    for (const laneId of ["../x", "a/../../b", "/etc/x", "%2e%2e", "a\\b", "a\u0000b", "a\nb", "\uff0e\uff0e", "foo@../x", "-rf", "x".repeat(64), "A1", ""]) {
      rejects(spec({ laneId }), RejectReason.INVALID_NAME);
    }
  });

  it("refuses reserved labels of another lane or host, and missing identity labels (group 12)", () => {
    const own = identityLabels({ laneId: "l1", hostId: "h1", pool: "p1" });
    rejects(spec({ labels: [...own, "lk-host-h2"] }), RejectReason.INVALID_LABEL);
    rejects(spec({ labels: [...own.filter((l) => !l.startsWith("lk-host-")), "lk-host-h2"] }), RejectReason.INVALID_LABEL);
    rejects(spec({ labels: [...own, "lk-lane-l2"] }), RejectReason.INVALID_LABEL);
    rejects(spec({ labels: [...own, "LK-Managed2"] }), RejectReason.INVALID_LABEL);
    rejects(spec({ labels: own.slice(1) }), RejectReason.INVALID_LABEL);
    for (const l of ["a,b", "a b", "a=b", "x\ny", "é", "x".repeat(101)]) rejects(spec({ labels: [...own, l] }), RejectReason.INVALID_LABEL);
  });

  it("refuses URLs that are not the scope's web URL", () => {
    for (const u of ["https://evil.example/acme/other", "https://u:p@github.com/acme/api", "https://github.com/acme/api?x=1", "file:///acme/api", "not a url", "https://github.com/acme/api --replace",
      "https://github.com/x/acme/api", "https://github.com/evil/../acme/api", "https://github.com/acme/api/", "https://github.com/%61cme/api"]) {
      rejects(spec({ githubUrl: u }), RejectReason.INVALID_NAME);
    }
    expect(validateGithubUrl("http://127.0.0.1:4000/acme/api", "acme/api")).toBe("http://127.0.0.1:4000/acme/api");
    expect(validateGithubUrl("https://github.com/acme", "org:acme")).toBe("https://github.com/acme");
  });

  it("refuses a runner group on a repository scope, unpinned images, and odd limits", () => {
    rejects(spec({ runnerGroup: "g" }), RejectReason.INVALID_NAME);
    rejects(spec({ backend: Backend.BACKEND_CONTAINER, runnerVersion: "", image: "ghcr.io/acme/runner:latest" }), RejectReason.INVALID_NAME);
    rejects(spec({ runnerVersion: "../../bin" }), RejectReason.INVALID_NAME);
    rejects(spec({ limits: { cpuMillis: 0, memoryBytes: 1024 } }), RejectReason.PAYLOAD_MALFORMED);
    rejects(spec({ backend: Backend.BACKEND_UNSPECIFIED }), RejectReason.NOT_ALLOWED_BACKEND);
    rejects(spec({ mode: LaneMode.LANE_MODE_UNSPECIFIED }), RejectReason.PAYLOAD_MALFORMED);
  });
});

describe("validateSecret", () => {
  it("accepts token and base64 characters only, bounded", () => {
    expect(validateSecret(Buffer.from("AABBcc12+/="), "t", 100).length).toBe(11);
    for (const bad of ["a b", "a\nb", "a;b", "$(x)", ""]) expect(() => validateSecret(Buffer.from(bad), "t", 100)).toThrow();
    expect(() => validateSecret(Buffer.alloc(101, 0x41), "t", 100)).toThrow(/longer/);
    expect(() => validateSecret(undefined, "t", 100)).toThrow(/missing/);
  });
});
