// Crash safety of multi-step lane operations: the agent process (a real LaneManager in its own process, inside the
// systemd sandbox like a production agent) SIGKILLs itself right after each journaled step of create and remove
// (and while config.sh runs); a restarted agent recovers from the journal, and the suite checks convergence: no
// half-created unit, no orphaned registration without a note, a lane either fully there or fully gone.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { verifyAuditChain } from "@lanekeeper/shared";
import { startGitHubEmulator, startSystemdSandbox, type GitHubEmulator, type SystemdSandbox } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crashAgent, driveAgent, type CrashAgent, type DriveResult } from "./agent-crash-fixture.js";
import { auditRecords, eventually, installRunnerDist, registrationToken, removeToken, runnerNamed } from "./agent-fixture.js";

let gh: GitHubEmulator;
let sd: SystemdSandbox;
let dist: string;

type Agent = CrashAgent;

const newAgent = (name: string, laneIds: string[]): Promise<Agent> => crashAgent(sd, gh, dist, name, laneIds);
/** Run the driver inside the sandbox; resolves with how it ended. */
const drive = (a: Agent, op: string, laneId: string, secret: Buffer | undefined, crashAt?: string): Promise<DriveResult> => driveAgent(sd, a, op, laneId, secret, crashAt);

async function recover(a: Agent): Promise<{ outcome: string; message: string }[]> {
  const r = await drive(a, "recover", "x", undefined);
  expect(r.code, r.out).toBe(0);
  return JSON.parse(r.out.trim().split("\n").at(-1) ?? "[]") as { outcome: string; message: string }[];
}

async function unitLoad(laneId: string): Promise<Record<string, string>> {
  return sd.unitProperties(`lanekeeper-lane-${laneId}.service`, ["LoadState", "ActiveState"]);
}

async function journalEmpty(a: Agent): Promise<boolean> {
  return (await readdir(join(a.parts.stateDir, "journal")).catch(() => [])).length === 0;
}

async function laneDirExists(a: Agent, laneId: string): Promise<boolean> {
  return (await a.parts.dirs.state(laneId)) !== "missing";
}

async function chainOk(a: Agent): Promise<void> {
  const res = verifyAuditChain(await readFile(a.parts.auditPath, "utf8"));
  expect(res.ok).toBe(true);
}

beforeAll(async () => {
  gh = await startGitHubEmulator({ repos: ["acme/api"] });
  sd = await startSystemdSandbox();
  dist = await installRunnerDist(sd.root);
});

afterAll(async () => {
  await sd?.stop();
  await gh?.stop();
});

const CREATE_ROLLBACK = ["begin", "dir", "runtime"];
const CREATE_FORWARD = ["configured", "started"];

describe.concurrent("kill -9 during create, then recovery", () => {
  it.each(CREATE_ROLLBACK.map((s, i) => [s, `kb${i}`]))("crash after %s: rolled back, nothing left, no registration", async (step, laneId) => {
    const a = await newAgent(`create-${step}`, [laneId]);
    const r = await drive(a, "create", laneId, await registrationToken(gh), `create:${step}`);
    expect(r.out).not.toContain("completed");
    expect(await journalEmpty(a)).toBe(false);
    const actions = await recover(a);
    expect(actions.map((x) => x.outcome)).toEqual(["rolled-back"]);
    expect(await laneDirExists(a, laneId)).toBe(false);
    expect((await unitLoad(laneId)).LoadState).toBe("not-found");
    expect(await runnerNamed(gh, laneId)).toBeUndefined();
    expect(await journalEmpty(a)).toBe(true);
    await chainOk(a);
    expect((await auditRecords(a.parts.auditPath)).at(-1)).toMatchObject({ action: "recover-create", laneId, phase: "succeeded" });
  });

  it.each(CREATE_FORWARD.map((s, i) => [s, `kf${i}`]))("crash after %s: rolled forward, lane runs with its one registration", async (step, laneId) => {
    const a = await newAgent(`create-${step}`, [laneId]);
    const r = await drive(a, "create", laneId, await registrationToken(gh), `create:${step}`);
    expect(r.out).not.toContain("completed");
    const actions = await recover(a);
    expect(actions.map((x) => x.outcome)).toEqual(["rolled-forward"]);
    expect((await unitLoad(laneId)).ActiveState).toMatch(/active|activating/);
    expect((await gh.control.listRunners()).filter((x) => x.name === laneId)).toHaveLength(1);
    await eventually(async () => (await runnerNamed(gh, laneId))?.status === "online", `${laneId} online`);
    expect(await journalEmpty(a)).toBe(true);
    await chainOk(a);
  });

  it("crash while config.sh runs: the stray config.sh is killed, and the lane is either fully there or gone with a note", async () => {
    const laneId = "kc0";
    const a = await newAgent("create-child", [laneId]);
    const r = await drive(a, "create", laneId, await registrationToken(gh), "create:runtime+child");
    expect(r.out).not.toContain("completed");
    const [action] = await recover(a);
    expect(await journalEmpty(a)).toBe(true);
    // No config.sh of this lane survives the recovery.
    const survivors = (await sd.exec("pgrep", ["-f", `${laneId}/runner/bin/Runner.Listener configure`])).stdout.trim();
    expect(survivors).toBe("");
    const reg = await runnerNamed(gh, laneId);
    if (action?.outcome === "rolled-forward") {
      expect(reg).toBeDefined();
      expect((await unitLoad(laneId)).LoadState).toBe("loaded");
    } else {
      expect(action?.outcome).toBe("rolled-back");
      expect((await unitLoad(laneId)).LoadState).toBe("not-found");
      expect(await laneDirExists(a, laneId)).toBe(false);
      // A registration that config.sh managed to make before it was killed is named in the recovery note.
      if (reg) expect(action?.message).toContain("orphaned registration");
    }
  });
});

describe.concurrent("kill -9 during remove, then recovery", () => {
  async function createdLane(name: string, laneId: string): Promise<Agent> {
    const a = await newAgent(name, [laneId]);
    const r = await drive(a, "create", laneId, await registrationToken(gh));
    expect(r.out).toContain("completed");
    await eventually(async () => (await runnerNamed(gh, laneId))?.status === "online", `${laneId} online`);
    return a;
  }

  it("crash after begin: nothing changed, the lane keeps running", async () => {
    const a = await createdLane("remove-begin", "rb0");
    const r = await drive(a, "remove", "rb0", await removeToken(gh), "remove:begin");
    expect(r.out).not.toContain("completed");
    expect((await recover(a)).map((x) => x.outcome)).toEqual(["rolled-back"]);
    expect((await unitLoad("rb0")).ActiveState).toBe("active");
    expect(await runnerNamed(gh, "rb0")).toBeDefined();
    expect(await journalEmpty(a)).toBe(true);
  });

  it("crash after stop, before deregistration: kept stopped with a note; a retried remove converges", async () => {
    const a = await createdLane("remove-stopped", "rs0");
    const r = await drive(a, "remove", "rs0", await removeToken(gh), "remove:stopped");
    expect(r.out).not.toContain("completed");
    const [action] = await recover(a);
    expect(action?.outcome).toBe("needs-attention");
    expect((await unitLoad("rs0")).ActiveState).toBe("inactive");
    expect(await runnerNamed(gh, "rs0")).toBeDefined();
    const state = JSON.parse(await readFile(join(a.parts.stateDir, "lanes", "rs0.json"), "utf8")) as { state: string; attentionReason: string; recoveryNote: string };
    expect(state).toMatchObject({ state: "needs-attention", attentionReason: "REMOVE_INCOMPLETE" });
    expect(state.recoveryNote).toContain("lanekeeper lanes remove rs0");
    // The operator's retry (a fresh remove token) finishes the job.
    const again = await drive(a, "remove", "rs0", await removeToken(gh));
    expect(again.out).toContain("completed");
    expect(await runnerNamed(gh, "rs0")).toBeUndefined();
    expect((await unitLoad("rs0")).LoadState).toBe("not-found");
  });

  it.each([
    ["deregistered", "rd0"],
    ["runtime-removed", "rd1"],
    ["dir-removed", "rd2"],
  ])("crash after %s: the deletion is finished", async (step, laneId) => {
    const a = await createdLane(`remove-${step}`, laneId);
    const r = await drive(a, "remove", laneId, await removeToken(gh), `remove:${step}`);
    expect(r.out).not.toContain("completed");
    expect((await recover(a)).map((x) => x.outcome)).toEqual(["rolled-forward"]);
    expect(await runnerNamed(gh, laneId)).toBeUndefined();
    expect((await unitLoad(laneId)).LoadState).toBe("not-found");
    expect(await laneDirExists(a, laneId)).toBe(false);
    expect(await journalEmpty(a)).toBe(true);
    await chainOk(a);
  });

  it("crash while config.sh remove runs: finished if GitHub deleted it, otherwise kept with a note", async () => {
    const a = await createdLane("remove-child", "rc0");
    const r = await drive(a, "remove", "rc0", await removeToken(gh), "remove:stopped+child");
    expect(r.out).not.toContain("completed");
    const [action] = await recover(a);
    const reg = await runnerNamed(gh, "rc0");
    if (action?.outcome === "rolled-forward") {
      expect(reg).toBeUndefined();
      expect(await laneDirExists(a, "rc0")).toBe(false);
    } else {
      expect(action?.outcome).toBe("needs-attention");
      expect(reg).toBeDefined();
      expect(await laneDirExists(a, "rc0")).toBe(true);
    }
    expect(await journalEmpty(a)).toBe(true);
  });
});

describe("after every crash", () => {
  it("no lane state claims a lane that is not there", async () => {
    // Every agent directory: each lane state file has its lane directory, each unit has its lane.
    for (const name of await readdir(sd.root)) {
      const stateLanes = await readdir(join(sd.root, name, "state", "lanes")).catch(() => [] as string[]);
      for (const f of stateLanes) {
        const laneId = f.replace(/\.json$/, "");
        expect(await readdir(join(sd.root, name, "lanes", laneId)).then(() => true, () => false), `${name}/${laneId}`).toBe(true);
      }
    }
  });
});
