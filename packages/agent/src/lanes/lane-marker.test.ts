import { describe, expect, it } from "vitest";
import { generateSigningKey, RejectReason } from "@lanekeeper/shared";
import { MarkerSigner, type LaneRecord } from "./lane-marker.js";

const record: LaneRecord = {
  format: 1,
  laneId: "l1",
  hostId: "h1",
  backend: "systemd",
  runtimeName: "lanekeeper-lane-l1.service",
  mode: "persistent",
  scope: "acme/api",
  pool: "p",
  labels: ["lk-managed"],
  runnerGroup: "",
  githubUrl: "https://github.com/acme/api",
  runnerVersion: "2.330.0",
  image: "",
  cpuMillis: 0,
  memoryBytes: 0,
  createdAtMs: 1,
};

describe("MarkerSigner", () => {
  const key = generateSigningKey();
  const signer = new MarkerSigner("h1", key);

  it("round-trips a signed lane.json bound to lane, backend and name", () => {
    const text = signer.signRecord(record);
    expect(signer.verifyRecord(text, { laneId: "l1", backend: "systemd", runtimeName: "lanekeeper-lane-l1.service" })).toEqual(record);
  });

  it("refuses a record for another lane, name or backend with BAD_MARKER", () => {
    const text = signer.signRecord(record);
    for (const expect_ of [{ laneId: "l2" }, { laneId: "l1", runtimeName: "lanekeeper-lane-l2.service" }, { laneId: "l1", backend: "container" as const }]) {
      expect(() => signer.verifyRecord(text, expect_)).toThrow(expect.objectContaining({ reason: RejectReason.BAD_MARKER }));
    }
  });

  it("refuses a tampered payload, a foreign key and a record of another host", () => {
    const text = signer.signRecord(record);
    const tampered = text.replace('\\"pool\\":\\"p\\"', '\\"pool\\":\\"q\\"');
    expect(tampered).not.toBe(text);
    expect(() => signer.verifyRecord(tampered, { laneId: "l1" })).toThrow(expect.objectContaining({ reason: RejectReason.BAD_MARKER }));
    const other = new MarkerSigner("h1", generateSigningKey());
    expect(() => other.verifyRecord(text, { laneId: "l1" })).toThrow(expect.objectContaining({ reason: RejectReason.BAD_MARKER }));
    // Same key, different configured host: the record names h1, this agent is h2.
    const h2 = new MarkerSigner("h2", key);
    expect(() => h2.verifyRecord(text, { laneId: "l1" })).toThrow(expect.objectContaining({ reason: RejectReason.FOREIGN_HOST }));
  });

  it("refuses extra keys, prototype keys and garbage", () => {
    const outer = JSON.parse(signer.signRecord(record)) as Record<string, unknown>;
    expect(() => signer.verifyRecord(JSON.stringify({ ...outer, extra: 1 }), { laneId: "l1" })).toThrow(/layout/);
    expect(() => signer.verifyRecord('{"__proto__":{}}', { laneId: "l1" })).toThrow(/layout/);
    expect(() => signer.verifyRecord("not json", { laneId: "l1" })).toThrow(/not JSON/);
  });

  it("binds runtime markers to host, lane, backend and name", () => {
    const m = signer.runtimeMarker("l1", "container", "lanekeeper-lane-l1");
    expect(signer.verifyRuntimeMarker(m, "l1", "container", "lanekeeper-lane-l1")).toBe(true);
    expect(signer.verifyRuntimeMarker(m, "l2", "container", "lanekeeper-lane-l1")).toBe(false);
    expect(signer.verifyRuntimeMarker(m, "l1", "systemd", "lanekeeper-lane-l1")).toBe(false);
    expect(signer.verifyRuntimeMarker(m, "l1", "container", "lanekeeper-lane-l2")).toBe(false);
    expect(new MarkerSigner("h2", key).verifyRuntimeMarker(m, "l1", "container", "lanekeeper-lane-l1")).toBe(false);
    expect(signer.verifyRuntimeMarker("x", "l1", "container", "lanekeeper-lane-l1")).toBe(false);
  });
});
