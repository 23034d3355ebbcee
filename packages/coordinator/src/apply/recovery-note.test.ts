import { describe, expect, it } from "vitest";
import { recoveryNote, type RecoveryFacts } from "./recovery-note.js";

const base: RecoveryFacts = { laneId: "l1", hostId: "build01", kind: "remove", step: "send-remove", safeState: "drained", code: "GITHUB_API", cause: "HTTP 502" };

describe("recoveryNote names the exact commands", () => {
  it("a drain deadline: wait longer or force, or put it back; nothing was killed", () => {
    const n = recoveryNote({ ...base, code: "DRAIN_DEADLINE", step: "wait-idle" });
    expect(n).toContain("nothing was killed");
    expect(n).toContain("`lanekeeper lanes remove l1 --deadline 2h`");
    expect(n).toContain("`lanekeeper lanes remove l1 --force`");
    expect(n).toContain("`lanekeeper lanes release l1`");
  });

  it("an operator drain's deadline names the drain command", () => {
    expect(recoveryNote({ ...base, kind: "drain", operatorOp: "drain", code: "DRAIN_DEADLINE" })).toContain("`lanekeeper lanes drain l1 --deadline 2h`");
  });

  it.each<[RecoveryFacts["safeState"], string]>([
    ["untouched", "re-run `lanekeeper apply`"],
    ["drained", "`lanekeeper lanes remove l1`"],
    ["stopped", "`lanekeeper lanes remove l1`"],
    ["created-unverified", "`lanekeeper lanes remove l1`"],
  ])("%s", (safeState, command) => {
    expect(recoveryNote({ ...base, safeState })).toContain(command);
  });

  it("a restart left drained says how to finish it and how to put the lane back", () => {
    const n = recoveryNote({ ...base, kind: "restart", step: "verify-online", safeState: "drained" });
    expect(n).toContain("`lanekeeper lanes restart l1`");
    expect(n).toContain("`lanekeeper lanes release l1`");
  });
});
