import { describe, expect, it } from "vitest";
import { RejectReason } from "./errors.js";
import {
  containerNameForLane,
  laneIdFromContainerName,
  laneIdFromUnitName,
  parseScope,
  scopeToString,
  unitNameForLane,
  validateContainerLabel,
  validateContainerName,
  validateHostId,
  validateImageRef,
  validateIntentId,
  validateKeyId,
  validateLabel,
  validateLabels,
  validateLaneId,
  validatePoolName,
  validateRunnerGroup,
  validateRunnerVersion,
  validateUnitName,
} from "./names.js";
import { reasonOf } from "@lanekeeper/testing";


function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("expected a rejection");
}

describe("ids", () => {
  it.each(["a", "0", "build01", "a-b-c", "a".repeat(63)])("accepts %j", (id) => {
    expect(validateHostId(id)).toBe(id);
    expect(validateLaneId(id)).toBe(id);
    expect(validatePoolName(id)).toBe(id);
  });

  it.each(["", "-a", "A", "a_b", "a.b", "a b", "a/b", "a".repeat(64), "ａ", "a\n", "a\0", "é"])("rejects %j", (id) => {
    expect(reasonOf(() => validateHostId(id))).toBe(RejectReason.INVALID_NAME);
    expect(reasonOf(() => validateLaneId(id))).toBe(RejectReason.INVALID_NAME);
    expect(reasonOf(() => validatePoolName(id))).toBe(RejectReason.INVALID_NAME);
  });

  it("names the offending character and the rule", () => {
    const msg = messageOf(() => validateLaneId("ab_c"));
    expect(msg).toContain('"_" at position 2');
    expect(msg).toContain("[a-z0-9][a-z0-9-]{0,62}");
    expect(messageOf(() => validateHostId("a\u0000"))).toContain("U+0000");
    expect(messageOf(() => validateHostId("x".repeat(64)))).toContain("at most 63 characters");
  });

  it("rejects non-strings", () => {
    expect(reasonOf(() => validateHostId(42))).toBe(RejectReason.INVALID_NAME);
  });

  it("validates intent ids and key ids", () => {
    expect(validateIntentId("0123456789abcdef0123456789abcdef")).toHaveLength(32);
    for (const bad of ["", "0123456789ABCDEF0123456789ABCDEF", "0".repeat(31), "0".repeat(33), "g".repeat(32)]) {
      expect(reasonOf(() => validateIntentId(bad))).toBe(RejectReason.INVALID_NAME);
    }
    expect(validateKeyId("a".repeat(64))).toHaveLength(64);
    expect(reasonOf(() => validateKeyId("A".repeat(64)))).toBe(RejectReason.INVALID_NAME);
    expect(reasonOf(() => validateKeyId("a".repeat(65)))).toBe(RejectReason.INVALID_NAME);
  });
});

describe("scopes", () => {
  it("parses repositories and organizations", () => {
    expect(parseScope("acme/api")).toEqual({ kind: "repo", owner: "acme", repo: "api" });
    expect(parseScope("Acme-Corp/my.repo_1")).toEqual({ kind: "repo", owner: "Acme-Corp", repo: "my.repo_1" });
    expect(parseScope("org:acme")).toEqual({ kind: "org", org: "acme" });
    for (const s of ["acme/api", "org:acme", "a/.github"]) expect(scopeToString(parseScope(s))).toBe(s);
  });

  it.each([
    "",
    "acme",
    "acme/",
    "/api",
    "acme/api/x",
    "-acme/api",
    "acme-/api",
    "ac--me/api",
    "acme/..",
    "acme/.",
    "acme/a b",
    "acme/a\nb",
    "org:",
    "org:-x",
    "org:a/b",
    `${"a".repeat(40)}/x`,
    `acme/${"r".repeat(101)}`,
    "acme/%2e%2e",
  ])("rejects %j", (s) => {
    expect(reasonOf(() => parseScope(s))).toBe(RejectReason.INVALID_NAME);
  });

  it("validates runner groups", () => {
    expect(validateRunnerGroup("Default")).toBe("Default");
    expect(validateRunnerGroup("linux builders")).toBe("linux builders");
    for (const g of ["", " x", "x ", "a\tb", "a,b", "x".repeat(101)]) {
      expect(reasonOf(() => validateRunnerGroup(g))).toBe(RejectReason.INVALID_NAME);
    }
  });
});

describe("labels", () => {
  it.each(["linux", "x64", "self-hosted", "gpu:a100", "ubuntu-22.04", "arch/arm64", "c++"])("accepts %j", (l) => {
    expect(validateLabel(l)).toBe(l);
  });

  it.each(["", "a,b", "a b", "a\tb", "a\nb", "a\0", "-x", ".x", "é", "ａ", "x".repeat(101), "a\"b", "a\\b", "a;b"])(
    "rejects %j",
    (l) => {
      expect(reasonOf(() => validateLabel(l))).toBe(RejectReason.INVALID_LABEL);
    },
  );

  it("reserves the lk- prefix in any case unless explicitly allowed", () => {
    expect(messageOf(() => validateLabel("lk-managed"))).toContain("reserved");
    expect(reasonOf(() => validateLabel("LK-Managed"))).toBe(RejectReason.INVALID_LABEL);
    expect(validateLabel("lk-managed", { allowReserved: true })).toBe("lk-managed");
    expect(validateLabel("lkx")).toBe("lkx");
  });

  it("rejects duplicate labels case-insensitively and too many labels", () => {
    expect(messageOf(() => validateLabels(["linux", "Linux"]))).toContain("twice");
    expect(reasonOf(() => validateLabels(Array.from({ length: 33 }, (_, i) => `l${i}`)))).toBe(
      RejectReason.INVALID_LABEL,
    );
    expect(validateLabels(["a", "b"])).toEqual(["a", "b"]);
  });
});

describe("unit and container names", () => {
  it("derives lane runtime names and reads them back", () => {
    expect(unitNameForLane("l1")).toBe("lanekeeper-lane-l1.service");
    expect(containerNameForLane("l1")).toBe("lanekeeper-lane-l1");
    expect(laneIdFromUnitName("lanekeeper-lane-l1.service")).toBe("l1");
    expect(laneIdFromUnitName("actions.runner.acme-api.x.service")).toBeUndefined();
    expect(laneIdFromContainerName("/lanekeeper-lane-l1")).toBe("l1");
    expect(laneIdFromContainerName("lanekeeper-lane-L1")).toBeUndefined();
    expect(reasonOf(() => unitNameForLane("../x"))).toBe(RejectReason.INVALID_NAME);
    expect(reasonOf(() => containerNameForLane("-rm"))).toBe(RejectReason.INVALID_NAME);
  });

  it("accepts ordinary unit names", () => {
    for (const n of ["lanekeeper-lane-a.service", "actions.runner.acme-api.build01.service", "a:b_c.service", "x.slice"]) {
      expect(validateUnitName(n)).toBe(n);
    }
    expect(validateUnitName("getty@tty1.service", { allowInstance: true })).toBe("getty@tty1.service");
  });

  // security-cases.md group 11
  it.each([
    ["../x.service", '"/"'],
    ["a/../../b.service", '"/"'],
    ["/etc/systemd/system/x.service", '"/"'],
    ["%2e%2e.service", '"%"'],
    ["a\\x2e.service", '"\\\\"'],
    ["a\u0000.service", "U+0000"],
    ["a\n.service", "U+000A"],
    ["\uff0e\uff0e.service", "U+FF0E"],
    [`${"a".repeat(250)}.service`, "at most 255"],
    ["foo@../x.service", "template instances"],
    ["-x.service", "must not start with '-'"],
    ["--help.service", "must not start with '-'"],
    ["a..b.service", "'..'"],
    ["x", "must end with"],
    [".service", "must not start with"],
    ["x.conf", "must end with"],
  ])("rejects unit name %j naming what to fix", (name, hint) => {
    expect(reasonOf(() => validateUnitName(name))).toBe(RejectReason.INVALID_NAME);
    expect(messageOf(() => validateUnitName(name))).toContain(hint);
  });

  it("still refuses traversal in instance names when instances are allowed", () => {
    expect(reasonOf(() => validateUnitName("foo@../x.service", { allowInstance: true }))).toBe(RejectReason.INVALID_NAME);
    expect(reasonOf(() => validateUnitName("a@b@c.service", { allowInstance: true }))).toBe(RejectReason.INVALID_NAME);
    expect(reasonOf(() => validateUnitName("@x.service", { allowInstance: true }))).toBe(RejectReason.INVALID_NAME);
  });

  it.each(["", "-x", ".x", "a/b", "../x", "a..b", "a b", "a\0", "x".repeat(129), "ａ"])("rejects container name %j", (n) => {
    expect(reasonOf(() => validateContainerName(n))).toBe(RejectReason.INVALID_NAME);
  });
});

describe("container labels", () => {
  it("accepts ordinary labels", () => {
    expect(() => validateContainerLabel("org.opencontainers.image.title", "runner")).not.toThrow();
    expect(() => validateContainerLabel("dev.lanekeeper.owner", "build01", { allowLanekeeperPrefix: true })).not.toThrow();
  });

  it.each([
    ["dev.lanekeeper.owner", "h", "reserved for the agent"],
    ["DEV.lanekeeper.owner", "h", "not allowed in a key"],
    ["com.docker.compose.project", "x", "reserved by the container engine"],
    ["io.podman.annotations", "x", "reserved by the container engine"],
    ["a=b", "x", "not allowed in a key"],
    ["a\nb", "x", "not allowed in a key"],
    ["", "x", "must not be empty"],
    [".a", "x", "start and end"],
    ["a..b", "x", "'..'"],
    ["k".repeat(129), "x", "at most 128"],
    ["ok", "a=b", "'=' and control characters"],
    ["ok", "a\nb", "U+000A"],
    ["ok", "a\u0000", "U+0000"],
    ["ok", "v".repeat(1025), "at most 1024"],
  ])("rejects %j=%j", (key, value, hint) => {
    expect(reasonOf(() => validateContainerLabel(key, value))).toBe(RejectReason.INVALID_LABEL);
    expect(messageOf(() => validateContainerLabel(key, value))).toContain(hint);
  });
});

describe("versions and images", () => {
  it("validates runner versions", () => {
    expect(validateRunnerVersion("2.330.0")).toBe("2.330.0");
    for (const v of ["", "2.330", "v2.330.0", "2.330.0/..", "../2.330.0", "2.330.0\n"]) {
      expect(reasonOf(() => validateRunnerVersion(v))).toBe(RejectReason.INVALID_NAME);
    }
  });

  it("requires images pinned by digest", () => {
    const d = "a".repeat(64);
    for (const ok of [`ghcr.io/acme/runner@sha256:${d}`, `runner@sha256:${d}`, `localhost:5000/r@sha256:${d}`, `docker.io/library/ubuntu@sha256:${d}`]) {
      expect(validateImageRef(ok)).toBe(ok);
    }
    for (const bad of [
      "ghcr.io/acme/runner:latest",
      "ghcr.io/acme/runner",
      `ghcr.io/acme/runner:1.0@sha256:${d}`,
      `ghcr.io/acme/runner@sha256:${"A".repeat(64)}`,
      `ghcr.io/acme/runner@sha256:${"a".repeat(63)}`,
      `@sha256:${d}`,
      `ghcr.io/Acme/runner@sha256:${d}`,
      `ghcr.io/acme/../runner@sha256:${d}`,
      `-x@sha256:${d}`,
    ]) {
      expect(reasonOf(() => validateImageRef(bad))).toBe(RejectReason.INVALID_NAME);
    }
  });
});
