import { describe, expect, it } from "vitest";
import { recoveryNote, type RecoveryFacts } from "./recovery-note.js";

const base: RecoveryFacts = { laneId: "l1", hostId: "build01", kind: "remove", step: "send-remove", safeState: "drained", code: "GITHUB_API", cause: "HTTP 502" };

/** Every `lanekeeper ...` command a note names, in order. */
function commands(note: string): string[] {
  return [...note.matchAll(/`(lanekeeper[^`]*)`/g)].map((m) => m[1] ?? "");
}

describe("recoveryNote names the exact commands", () => {
  it("a drain deadline: wait longer or force (with a deadline, confirmed), or put it back; nothing was killed", () => {
    const n = recoveryNote({ ...base, code: "DRAIN_DEADLINE", step: "wait-idle" });
    expect(n).toContain("nothing was killed");
    expect(n).toContain("`lanekeeper lanes remove l1 --deadline 2h`");
    expect(n).toContain("`lanekeeper lanes remove l1 --force --deadline 10m`");
    expect(n).toContain("`lanekeeper lanes release l1`");
    // --force is never named without a deadline.
    expect(commands(n).filter((c) => c.includes("--force") && !c.includes("--deadline"))).toEqual([]);
  });

  it("an operator drain's deadline names the drain command", () => {
    expect(recoveryNote({ ...base, kind: "drain", operatorOp: "drain", code: "DRAIN_DEADLINE" })).toContain("`lanekeeper lanes drain l1 --deadline 2h`");
  });

  it.each<[RecoveryFacts["safeState"], string]>([
    ["untouched", "re-run `lanekeeper apply`"],
    ["drained", "`lanekeeper apply`"],
    ["stopped", "`lanekeeper lanes remove l1`"],
    ["created-unverified", "`lanekeeper apply`"],
  ])("a planned action left %s", (safeState, command) => {
    expect(recoveryNote({ ...base, safeState })).toContain(command);
  });

  it("a restart left drained says how to finish it and how to put the lane back", () => {
    const n = recoveryNote({ ...base, kind: "restart", step: "verify-online", safeState: "drained" });
    expect(n).toContain("`lanekeeper lanes restart l1`");
    expect(n).toContain("`lanekeeper lanes release l1`");
  });
});

describe("an operator command's note names the command that acts on what it left", () => {
  const drain: RecoveryFacts = { ...base, kind: "drain", operatorOp: "drain", step: "set-draining-labels", safeState: "untouched", code: "GITHUB_UNREACHABLE", cause: "connection refused" };

  it("untouched (its record write undone): the lane is as it was; run the same command again, not apply (which leaves operator drains alone)", () => {
    const n = recoveryNote({ ...drain, recordState: "active" });
    expect(n).toContain("nothing was changed");
    expect(n).toContain("its record says active");
    expect(commands(n)).toEqual(["lanekeeper lanes drain l1"]);
  });

  it("untouched but the record still says draining (the undo lost a race): release puts it back, or drain again", () => {
    const n = recoveryNote({ ...drain, recordState: "draining" });
    expect(n).toContain("its record says draining");
    expect(commands(n)).toEqual(["lanekeeper lanes drain l1", "lanekeeper lanes release l1"]);
  });

  it("an operator remove whose record still says removing warns that apply would resume it", () => {
    const n = recoveryNote({ ...drain, kind: "remove", operatorOp: "remove", recordState: "removing" });
    expect(n).toContain("`lanekeeper apply` would resume the removal");
  });

  it("drained by an operator drain: finish with lanes drain or release; never apply (it would not finish it)", () => {
    const n = recoveryNote({ ...drain, step: "send-drain", safeState: "drained", code: "DISPATCH_TIMEOUT", recordState: "draining" });
    expect(commands(n)).toEqual(["lanekeeper lanes drain l1", "lanekeeper lanes release l1"]);
  });

  it("a label change that got no answer says the lane may be drained", () => {
    const n = recoveryNote({ ...drain, safeState: "drained", uncertain: true, recordState: "draining" });
    expect(n).toContain("may be drained");
  });
});

describe("a create whose outcome is unknown is never given a destructive command", () => {
  const create: RecoveryFacts = { ...base, kind: "create", step: "send-create", safeState: "created-unverified", code: "DISPATCH_TIMEOUT", cause: "no result", recordState: "creating" };

  it.each<RecoveryFacts["observed"]>([
    undefined,
    { registration: "online", host: "present" },
    { registration: "online", host: "unknown" },
    { registration: "absent", host: "absent" },
    { registration: "unknown", host: "unknown" },
  ])("observed %j: status/plan first, then apply; no remove", (observed) => {
    const n = recoveryNote({ ...create, observed });
    expect(commands(n)[0]).toBe("lanekeeper status");
    expect(commands(n)).toContain("lanekeeper apply");
    expect(n).not.toMatch(/lanes (remove|restart|drain)/);
  });

  it("a lane seen online on GitHub and on its host is called healthy", () => {
    expect(recoveryNote({ ...create, observed: { registration: "online", host: "present" } })).toContain("It looks healthy");
  });
});
