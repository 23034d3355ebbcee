// The systemd backend against a real systemd (PID 1 of its own namespaces), the runner emulator and the GitHub
// emulator: create/stop/restart/remove with ownership re-checks, stop refused while a job runs, health restart
// after kill -9, the crash-loop breaker, a deleted registration, holds, and a hand-made runner unit that lives
// beside the managed lanes through every test and is asserted unmodified at the end.
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Health, LaneState, RejectReason, isRejectError } from "@lanekeeper/shared";
import { startGitHubEmulator, startSystemdSandbox, type GitHubEmulator, type SystemdSandbox } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type LaneManager,
  SystemdRuntime,
  renderLaneUnit,
  writeHold,
  removeHold,
} from "../../packages/agent/src/index.js";
import {
  agentParts,
  auditRecords,
  deleteRegistration,
  eventually,
  expectAuditTriple,
  fileHash,
  HOST,
  installRunnerDist,
  laneManager,
  laneSpec,
  registrationToken,
  removeToken,
  runnerNamed,
  sandboxRunner,
  type AgentParts,
} from "./agent-fixture.js";

const HANDMADE_UNIT = "actions.runner.acme-api.handmade.service";

let gh: GitHubEmulator;
let sd: SystemdSandbox;
let parts: AgentParts;
let rt: SystemdRuntime;
let lanes: LaneManager;
let handmadeHash: string;
let handmadePid: string;

/** Deadline of one wait in the deleted-registration test: generous, since it waits on a condition, not a time. */
const LOADED_DEADLINE_MS = 120_000;

async function unitState(name: string): Promise<string> {
  return (await sd.unitProperties(name, ["ActiveState"])).ActiveState ?? "";
}

async function listenerPid(laneId: string): Promise<number | undefined> {
  for (const pid of await sd.unitHostPids(`lanekeeper-lane-${laneId}.service`)) {
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
    if (comm === "Runner.Listener") return pid;
  }
  return undefined;
}

async function createLane(laneId: string): Promise<void> {
  const obs = await lanes.create({ spec: laneSpec(laneId, gh), registrationToken: await registrationToken(gh), operationId: `op-${laneId}` });
  expect(obs.state).toBe(LaneState.LANE_STATE_RUNNING);
  await eventually(async () => (await runnerNamed(gh, laneId))?.status === "online", `${laneId} online`);
}

async function expectReject(p: Promise<unknown>, reason: RejectReason): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isRejectError(err) ? err.reason : err).toBe(reason);
}

beforeAll(async () => {
  gh = await startGitHubEmulator({ repos: ["acme/api"] });
  sd = await startSystemdSandbox();
  parts = await agentParts(join(sd.root, "agent"));
  const dist = await installRunnerDist(join(sd.root, "agent"));
  rt = new SystemdRuntime({
    hostId: HOST,
    unitDir: sd.unitDir,
    signer: parts.signer,
    dirs: parts.dirs,
    runnerDistPath: dist,
    // Tests run lanes as root (RUNNER_ALLOW_RUNASROOT=1 is then set in the unit); production uses runAsUser.
    user: { name: "root", uid: 0, gid: 0, home: "/root" },
    systemctl: sandboxRunner((cmd, args, o) => sd.exec(cmd, args, o)),
    cgroupRoots: [sd.cgroupPath],
  });
  lanes = laneManager(parts, { systemd: rt });
  // A hand-made runner beside the managed lanes: svc.sh-style unit name, its own directory, running.
  const handmadeDir = join(sd.root, "handmade");
  await mkdir(handmadeDir, { recursive: true });
  await writeFile(join(handmadeDir, ".runner"), JSON.stringify({ agentId: 999, agentName: "handmade", gitHubUrl: gh.webUrl("acme/api") }));
  await sd.writeUnit(HANDMADE_UNIT, `[Unit]\nDescription=GitHub Actions Runner (acme-api.handmade)\n[Service]\nWorkingDirectory=${handmadeDir}\nExecStart=/bin/sleep 100000\n`);
  await sd.systemctl("daemon-reload");
  await sd.systemctl("start", HANDMADE_UNIT);
  await sd.waitForUnitState(HANDMADE_UNIT, "active");
  handmadeHash = await fileHash(join(sd.unitDir, HANDMADE_UNIT));
  handmadePid = (await sd.unitProperties(HANDMADE_UNIT, ["MainPID"])).MainPID ?? "";
});

afterAll(async () => {
  await parts?.audit.close();
  await sd?.stop();
  await gh?.stop();
});

describe("systemd lanes", () => {
  it("creates a lane: signed lane.json, marked unit, registered runner online with its labels", async () => {
    await createLane("s1");
    const unit = await readFile(join(sd.unitDir, "lanekeeper-lane-s1.service"), "utf8");
    expect(unit).toContain(`X-Lanekeeper-Host=${HOST}`);
    expect(unit).toContain("Restart=no");
    expect(await unitState("lanekeeper-lane-s1.service")).toBe("active");
    const r = await runnerNamed(gh, "s1");
    expect(r?.labels).toEqual(["lk-managed", "lk-lane-s1", `lk-host-${HOST}`, "lk-pool-linux-x64", "linux"]);
    // The token never reached the unit, the env file or the lane record.
    const env = await readFile(parts.dirs.envFile("s1"), "utf8");
    expect(env).toBe("");
    const obs = await lanes.inspect("s1");
    expect(obs.runnerId).toBe(r?.id);
    expectAuditTriple(await auditRecords(parts.auditPath), "create", "s1", "succeeded");
  });

  it("refuses stop, restart and remove while a job runs; a forced stop is audited as forced", async () => {
    const job = await gh.control.createJob("acme/api", { labels: ["lk-lane-s1"], durationMs: 60_000, name: "long" });
    await eventually(async () => (await gh.control.getJob(job.id)).status === "in_progress", "job in progress");
    await eventually(async () => (await rt.jobEvidence("s1")).jobRunning, "Runner.Worker alive");
    await expectReject(lanes.stop({ laneId: "s1" }), RejectReason.JOB_RUNNING);
    await expectReject(lanes.restart({ laneId: "s1" }), RejectReason.JOB_RUNNING);
    await expectReject(lanes.remove({ laneId: "s1", removeToken: await removeToken(gh) }), RejectReason.JOB_RUNNING);
    expect((await gh.control.getJob(job.id)).status).toBe("in_progress");
    expect(await unitState("lanekeeper-lane-s1.service")).toBe("active");
    expect((await lanes.inspect("s1")).jobRunning).toBe(true);
    expectAuditTriple(await auditRecords(parts.auditPath), "stop", "s1", "rejected");
    // A forced stop is possible and audited as forced: the operator's call.
    await lanes.stop({ laneId: "s1", force: true, forcedBy: "alice" });
    expect(await unitState("lanekeeper-lane-s1.service")).toBe("inactive");
    const forced = (await auditRecords(parts.auditPath)).filter((r) => r.action === "stop" && r.laneId === "s1").at(-1);
    expect(forced?.details).toMatchObject({ forcedBy: "alice" });
    await lanes.start({ laneId: "s1" });
    await eventually(async () => (await runnerNamed(gh, "s1"))?.status === "online", "s1 online again");
  });

  it("restarts a runner killed with SIGKILL, with an audit record", async () => {
    const pid = await eventually(() => listenerPid("s1"), "listener pid");
    process.kill(pid, "SIGKILL");
    await eventually(async () => (await unitState("lanekeeper-lane-s1.service")) !== "active", "unit down");
    await lanes.superviseOnce();
    expect(await unitState("lanekeeper-lane-s1.service")).toMatch(/active|activating/);
    const obs = await lanes.inspect("s1");
    expect(obs.restartsInWindow).toBe(1);
    expectAuditTriple(await auditRecords(parts.auditPath), "health-restart", "s1", "succeeded");
    await eventually(async () => (await listenerPid("s1")) !== undefined && (await listenerPid("s1")) !== pid, "new listener");
  });

  it("stops restarting after maxRestarts in the window and marks the lane needs-attention", async () => {
    await createLane("s2");
    for (let i = 0; i < 3; i++) {
      const pid = await eventually(() => listenerPid("s2"), "listener pid");
      process.kill(pid, "SIGKILL");
      await eventually(async () => (await unitState("lanekeeper-lane-s2.service")) !== "active", "unit down");
      // Supervise until the lane is back up or the breaker trips (backoff may need a second pass).
      await eventually(async () => {
        await lanes.superviseOnce();
        const o = await lanes.inspect("s2");
        return o.state === LaneState.LANE_STATE_NEEDS_ATTENTION || (await unitState("lanekeeper-lane-s2.service")) === "active";
      }, "restart or breaker");
    }
    const obs = await lanes.inspect("s2");
    expect(obs.state).toBe(LaneState.LANE_STATE_NEEDS_ATTENTION);
    expect(obs.health).toBe(Health.HEALTH_CRASH_LOOP);
    expect(obs.attentionReason).toBe("CRASH_LOOP");
    expect(obs.recoveryNote).toContain("lanekeeper lanes restart s2");
    await lanes.superviseOnce();
    expect(await unitState("lanekeeper-lane-s2.service")).not.toBe("active");
    // An explicit restart clears the state.
    await lanes.restart({ laneId: "s2" });
    expect((await lanes.inspect("s2")).attentionReason).toBe("");
  });

  // On a loaded machine every step here (the listener noticing the deletion, systemd reporting the exit, the
  // diagnosis) can take long: each waits on its condition with a generous deadline, never on a fixed time.
  it("reports a deleted registration instead of restarting forever", async () => {
    const r = await eventually(() => runnerNamed(gh, "s2"), "s2 registration", LOADED_DEADLINE_MS);
    await eventually(async () => (await runnerNamed(gh, "s2"))?.status === "online", "s2 online", LOADED_DEADLINE_MS, 250);
    await deleteRegistration(gh, r.id);
    await eventually(async () => (await unitState("lanekeeper-lane-s2.service")) !== "active", "listener exits", LOADED_DEADLINE_MS, 250);
    const obs = await eventually(
      async () => {
        await lanes.superviseOnce();
        const o = await lanes.inspect("s2");
        return o.health === Health.HEALTH_REGISTRATION_DELETED ? o : undefined;
      },
      "s2 diagnosed REGISTRATION_DELETED",
      LOADED_DEADLINE_MS,
      500,
    );
    expect(obs.attentionReason).toBe("REGISTRATION_DELETED");
    expect(obs.recoveryNote).toContain("lanekeeper lanes remove s2");
    await lanes.superviseOnce();
    expect(await unitState("lanekeeper-lane-s2.service")).not.toBe("active");
    expect((await lanes.inspect("s2")).health).toBe(Health.HEALTH_REGISTRATION_DELETED);
    // Remove without a token: the registration is gone already.
    expect((await lanes.remove({ laneId: "s2" })).deregistration).toBe("skipped");
  }, 4 * LOADED_DEADLINE_MS);

  it("a held lane refuses mutations and is not restarted; the hold is audited once", async () => {
    await writeHold(parts.stateDir, { laneId: "s1", reason: "disk check", atMs: Date.now(), by: "ops" });
    await expectReject(lanes.stop({ laneId: "s1" }), RejectReason.LANE_HELD);
    const pid = await eventually(() => listenerPid("s1"), "listener pid");
    process.kill(pid, "SIGKILL");
    await eventually(async () => (await unitState("lanekeeper-lane-s1.service")) !== "active", "unit down");
    await lanes.superviseOnce();
    await lanes.superviseOnce();
    expect(await unitState("lanekeeper-lane-s1.service")).not.toBe("active");
    const obs = await lanes.inspect("s1");
    expect(obs.held).toBe(true);
    expect(obs.holdReason).toBe("disk check");
    const holds = (await auditRecords(parts.auditPath)).filter((r) => r.laneId === "s1" && r.action === "hold");
    expect(holds).toHaveLength(1);
    await removeHold(parts.stateDir, "s1");
    // After the release the health loop restarts it (with backoff: it was restarted once already in the window).
    await eventually(async () => {
      await lanes.superviseOnce();
      return (await unitState("lanekeeper-lane-s1.service")) === "active";
    }, "restarted after release");
    expect((await auditRecords(parts.auditPath)).filter((r) => r.laneId === "s1" && r.action === "release")).toHaveLength(1);
  });

  it("removes a lane: deregisters with the remove token, deletes unit and directory", async () => {
    const res = await lanes.remove({ laneId: "s1", removeToken: await removeToken(gh) });
    expect(res.deregistration).toBe("removed");
    expect(await runnerNamed(gh, "s1")).toBeUndefined();
    expect((await sd.unitProperties("lanekeeper-lane-s1.service", ["LoadState"])).LoadState).toBe("not-found");
    await expectReject(lanes.inspect("s1"), RejectReason.LANE_NOT_FOUND);
    expectAuditTriple(await auditRecords(parts.auditPath), "remove", "s1", "succeeded");
  });
});

describe("ownership guards at the LaneManager (security cases 9, 11, 12)", () => {
  it("refuses a unit without marker, with another host's marker, or with a copied marker", async () => {
    await createLane("g1");
    const unitPath = join(sd.unitDir, "lanekeeper-lane-g1.service");
    const original = await readFile(unitPath, "utf8");
    // No marker: a hand-written unit under the lane's name.
    await writeFile(unitPath, original.replace(/^X-Lanekeeper-.*\n/gm, ""));
    await expectReject(lanes.stop({ laneId: "g1" }), RejectReason.NOT_OWNED);
    // Another host's marker.
    await writeFile(unitPath, original.replace(`X-Lanekeeper-Host=${HOST}`, "X-Lanekeeper-Host=build02"));
    await expectReject(lanes.restart({ laneId: "g1" }), RejectReason.FOREIGN_HOST);
    // Markers copied onto another lane's name do not verify (the signature binds the name).
    const g2Unit = renderLaneUnit({
      laneId: "g2",
      hostId: HOST,
      marker: /X-Lanekeeper-Marker=(.*)/.exec(original)?.[1] ?? "",
      description: "forged",
      user: "root",
      runnerDir: "/srv/x",
      envFile: "/srv/x.env",
      logFile: "/srv/x.log",
      allowRoot: true,
      cpuMillis: 0,
      memoryBytes: 0,
    });
    await writeFile(join(sd.unitDir, "lanekeeper-lane-g2.service"), g2Unit);
    await expect(rt.checkOwnership("g2")).rejects.toMatchObject({ reason: RejectReason.BAD_MARKER });
    // Every refusal left the runner running and the files as they were.
    await writeFile(unitPath, original);
    expect(await unitState("lanekeeper-lane-g1.service")).toBe("active");
    const refused = (await auditRecords(parts.auditPath)).filter((r) => r.laneId === "g1" && r.phase === "rejected").map((r) => r.reasonCode);
    expect(refused).toEqual(["NOT_OWNED", "FOREIGN_HOST"]);
  });

  it("refuses a symlinked unit file and a symlinked lane directory", async () => {
    const unitPath = join(sd.unitDir, "lanekeeper-lane-g3.service");
    await symlink(join(sd.unitDir, "lanekeeper-lane-g1.service"), unitPath);
    await expect(rt.checkOwnership("g3")).rejects.toMatchObject({ reason: RejectReason.SYMLINK });
    await symlink(parts.dirs.dir("g1"), parts.dirs.dir("g4"));
    await expectReject(lanes.stop({ laneId: "g4" }), RejectReason.SYMLINK);
    await expectReject(lanes.create({ spec: laneSpec("g3", gh), registrationToken: await registrationToken(gh) }), RejectReason.SYMLINK);
    // Nothing of g1 was touched through the links.
    expect(await unitState("lanekeeper-lane-g1.service")).toBe("active");
  });

  it("refuses traversal names, instance injection and option injection before touching anything", async () => {
    for (const laneId of ["../x", "a/../../b", "/etc/passwd", "%2e%2e", "a\\b", "a\u0000b", "a\nb", "\uff0e\uff0e", "foo@../x", "-rf", "x".repeat(64)]) {
      await expectReject(lanes.stop({ laneId }), RejectReason.INVALID_NAME);
      const spec = { ...laneSpec("g9", gh), laneId };
      await expectReject(lanes.create({ spec, registrationToken: Buffer.from("t") }), RejectReason.INVALID_NAME);
    }
  });

  it("refuses reserved labels of another host or lane (label injection)", async () => {
    const spec = laneSpec("g5", gh);
    await expectReject(lanes.create({ spec: { ...spec, labels: [...spec.labels, "lk-host-build02"] }, registrationToken: await registrationToken(gh) }), RejectReason.INVALID_LABEL);
    await expectReject(lanes.create({ spec: { ...spec, labels: [...spec.labels, "a\nb"] }, registrationToken: await registrationToken(gh) }), RejectReason.INVALID_LABEL);
    expect(await runnerNamed(gh, "g5")).toBeUndefined();
  });

  it("never lists or touches the hand-made runner unit", async () => {
    const listing = await rt.list();
    expect(listing.owned.map((o) => o.laneId)).not.toContain("handmade");
    const hand = listing.unmanaged.find((u) => u.name === HANDMADE_UNIT);
    expect(hand).toMatchObject({ kind: "systemd-unit", reason: "NO_MARKER", runnerName: "handmade", state: "active" });
    expect(listing.unmanaged.find((u) => u.name === "lanekeeper-lane-g2.service")?.reason).toBe("BAD_MARKER");
  });
});

describe("the hand-made runner", () => {
  it("is unmodified after every test: same unit file, same process", async () => {
    expect(await fileHash(join(sd.unitDir, HANDMADE_UNIT))).toBe(handmadeHash);
    expect(await unitState(HANDMADE_UNIT)).toBe("active");
    expect((await sd.unitProperties(HANDMADE_UNIT, ["MainPID"])).MainPID).toBe(handmadePid);
  });
});
