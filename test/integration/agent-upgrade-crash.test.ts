// Crash safety of the in-place runner upgrade: a real agent process (a LaneManager inside the systemd sandbox, as
// in production) upgrades a drained, registered, running lane and SIGKILLs itself right after a journaled step of the
// swap (LANEKEEPER_TEST_CRASH_AT, the agent's env-only test hook), including between the two renames where the lane
// has no runner/ at all. A restarted agent recovers: the runner files match the version lane.json names, nothing is
// left beside runner/, the unit runs again with the lane's one registration online, the recovery is in the audit
// chain, and the coordinator's retried upgrade converges on the new version.
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { verifyAuditChain } from "@lanekeeper/shared";
import { startGitHubEmulator, startSystemdSandbox, type GitHubEmulator, type SystemdSandbox } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crashAgent, driveAgent, type CrashAgent, type DriveResult } from "./agent-crash-fixture.js";
import { auditRecords, eventually, installRunnerDist, registrationToken, runnerNamed, RUNNER_VERSION } from "./agent-fixture.js";

/** The release the lanes upgrade to: the runner emulator again, told apart from the first by a marker file. */
const NEXT_VERSION = "2.337.0";
/** Written into each release tree: which version a lane's `runner/` files are. */
const MARK = "lk-test-release";

let gh: GitHubEmulator;
let sd: SystemdSandbox;
let dist: string;

type Agent = CrashAgent;

const newAgent = (name: string, laneId: string): Promise<Agent> => crashAgent(sd, gh, dist, name, [laneId], { upgradeTo: NEXT_VERSION });
const drive = (a: Agent, op: string, laneId: string, secret?: Buffer, crashAt?: string): Promise<DriveResult> => driveAgent(sd, a, op, laneId, secret, crashAt);

/** The lane's runner files, its lane.json version, and what else sits beside runner/. */
async function onDisk(a: Agent, laneId: string): Promise<{ files: string | undefined; recorded: string; spare: string[] }> {
  const files = await readFile(join(a.parts.dirs.runnerDir(laneId), MARK), "utf8").catch(() => undefined);
  const spare = (await readdir(a.parts.dirs.dir(laneId))).filter((n) => n === "runner.old" || n === "runner.next").sort();
  return { files, recorded: (await a.parts.dirs.read(laneId)).runnerVersion, spare };
}

async function journalEmpty(a: Agent): Promise<boolean> {
  return (await readdir(join(a.parts.stateDir, "journal")).catch(() => [])).length === 0;
}

beforeAll(async () => {
  gh = await startGitHubEmulator({ repos: ["acme/api"] });
  sd = await startSystemdSandbox();
  dist = await installRunnerDist(sd.root);
  await cp(join(dist, RUNNER_VERSION), join(dist, NEXT_VERSION), { recursive: true });
  await writeFile(join(dist, RUNNER_VERSION, MARK), RUNNER_VERSION);
  await writeFile(join(dist, NEXT_VERSION, MARK), NEXT_VERSION);
});

afterAll(async () => {
  await sd?.stop();
  await gh?.stop();
});

describe.concurrent("kill -9 during a runner upgrade, then recovery", () => {
  it.each([
    ["staged", "ux0", "rolled-back", RUNNER_VERSION],
    ["swapping", "ux1", "rolled-back", RUNNER_VERSION],
    ["swapped", "ux2", "rolled-back", RUNNER_VERSION],
    ["recorded", "ux3", "rolled-forward", NEXT_VERSION],
  ])("crash after %s (%s): %s, files and lane.json agree on %s, the lane runs; the retried upgrade converges", async (step, laneId, outcome, version) => {
    const a = await newAgent(`upgrade-${step}`, laneId);
    expect((await drive(a, "create", laneId, await registrationToken(gh))).out).toContain("completed");
    await eventually(async () => (await runnerNamed(gh, laneId))?.status === "online", `${laneId} online`);
    const runnerId = (await runnerNamed(gh, laneId))?.id;
    expect((await drive(a, "drain", laneId)).out).toContain("completed");

    const killed = await drive(a, "upgrade", laneId, undefined, `upgrade:${step}`);
    expect(killed.signal, killed.out).toBe("SIGKILL");
    expect(await journalEmpty(a)).toBe(false);
    if (step === "swapping") {
      // Killed between the two renames: the lane has no runner/ at all.
      expect(await onDisk(a, laneId)).toMatchObject({ files: undefined, spare: ["runner.next", "runner.old"] });
    }

    const rec = await drive(a, "recover", "x");
    expect(rec.code, rec.out).toBe(0);
    const actions = JSON.parse(rec.out.trim().split("\n").at(-1) ?? "[]") as { op: string; outcome: string }[];
    expect(actions).toMatchObject([{ op: "upgrade", outcome }]);
    expect(await onDisk(a, laneId)).toEqual({ files: version, recorded: version, spare: [] });
    expect(await journalEmpty(a)).toBe(true);
    expect((await sd.unitProperties(`lanekeeper-lane-${laneId}.service`, ["ActiveState"])).ActiveState).toMatch(/active|activating/);
    // The same registration comes back online: the lane kept its .runner and .credentials through the crash.
    await eventually(async () => (await runnerNamed(gh, laneId))?.status === "online", `${laneId} online after recovery`);
    expect((await gh.control.listRunners()).filter((r) => r.name === laneId).map((r) => r.id)).toEqual([runnerId]);
    expect(verifyAuditChain(await readFile(a.parts.auditPath, "utf8")).ok).toBe(true);
    expect((await auditRecords(a.parts.auditPath)).filter((r) => r.action === "recover-upgrade").at(-1)).toMatchObject({
      phase: "succeeded",
      laneId,
      details: { step, outcome, from: RUNNER_VERSION, to: NEXT_VERSION, runnerVersion: version },
    });

    // The coordinator re-sends the upgrade (its verify step saw the old version, or timed out): it converges.
    expect((await drive(a, "upgrade", laneId)).out).toContain("completed");
    expect(await onDisk(a, laneId)).toEqual({ files: NEXT_VERSION, recorded: NEXT_VERSION, spare: [] });
    await eventually(async () => (await runnerNamed(gh, laneId))?.status === "online", `${laneId} online on ${NEXT_VERSION}`);
  });
});
