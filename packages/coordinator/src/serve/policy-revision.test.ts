import { makePolicy, hostPolicy } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import { policyDigest } from "../plan/saved-plan.js";
import { policyRevision, policyRevisionLines, policyRevisionView } from "./policy-revision.js";

const mine = makePolicy({ hosts: { h1: hostPolicy(1) } });
const other = makePolicy({ hosts: { h1: hostPolicy(1), h2: hostPolicy(2) } });

describe("policyRevisionView", () => {
  it("no leader: says so", () => {
    const v = policyRevisionView(mine, undefined);
    expect(v).toEqual({ local: policyDigest(mine), leader: null, differs: false });
    expect(policyRevisionLines(v)[0]).toMatch(/no coordinator leads/);
  });

  it("the leader runs the same policy: no warning", () => {
    const v = policyRevisionView(mine, { instance: "coord-a", policy: policyRevision(mine, Date.parse("2026-12-05T01:00:00Z")) });
    expect(v).toEqual({ local: policyDigest(mine), leader: { instance: "coord-a", digest: policyDigest(mine), loadedAt: "2026-12-05T01:00:00.000Z" }, differs: false });
    expect(policyRevisionLines(v)).toEqual([`Policy: the leader coord-a runs ${policyDigest(mine).slice(0, 19)} (loaded 2026-12-05T01:00:00.000Z); this file is the same`]);
  });

  it("the leader runs another policy: a warning; a refused reload is shown as `policy reload failed: ...`", () => {
    const v = policyRevisionView(mine, {
      instance: "coord-b",
      policy: { ...policyRevision(other, 0), reloadFailed: { atMs: 5000, message: "restart needed: coordinator.natsServers changed" } },
    });
    expect(v.differs).toBe(true);
    const lines = policyRevisionLines(v);
    expect(lines[1]).toMatch(/^WARNING: this policy file differs from the one the leader runs/);
    expect(lines[2]).toBe(
      `policy reload failed: restart needed: coordinator.natsServers changed (at 1970-01-01T00:00:05.000Z; the leader keeps running ${policyDigest(other).slice(0, 19)})`,
    );
  });

  it("a record without a revision (an older leader), a malformed one, and an unreadable lock", () => {
    expect(policyRevisionLines(policyRevisionView(mine, { instance: "old" }))[0]).toMatch(/the leader old does not publish its policy revision/);
    expect(policyRevisionView(mine, { instance: "x", policy: { digest: 5 } }).leader).toEqual({ instance: "x" });
    expect(policyRevisionLines(policyRevisionView(mine, { unreadable: "timeout" }))[0]).toMatch(/could not be read \(timeout\)$/);
  });
});
