// `apply --dry-run` changes nothing: the emulator's runner list and its mutating-call counters, the host's unit
// files and units, the lane store and the per-host intent sequence are exactly as before; the only trace is
// `dry-run` audit records. Then a real apply scales up and down beside hand-made runners (a GitHub-only
// registration without lanekeeper labels, and an svc.sh-style unit on the host) that stay untouched throughout.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { observeAndPlan } from "../../packages/coordinator/src/context/observe-world.js";
import { KvSequenceAllocator } from "../../packages/coordinator/src/dispatch/sequence-allocator.js";
import { eventually } from "./agent-fixture.js";
import { HOST, startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

const HANDMADE_UNIT = "actions.runner.acme-api.handmade.service";
let w: ApplyWorld;
let handmadeRunnerId = 0;
let handmadeMainPid = "";

beforeAll(async () => {
  w = await startApplyWorld();
  // A runner registered by hand on GitHub (no lk- labels), with its own token so the admin counters stay ours.
  const setup = await w.gh.control.createToken("setup");
  const res = await fetch(`${w.gh.apiUrl}/repos/acme/api/actions/runners/generate-jitconfig`, {
    method: "POST",
    headers: { authorization: `token ${setup}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "handmade", runner_group_id: 1, labels: ["self-hosted", "linux", "gpu"] }),
  });
  expect(res.status).toBe(201);
  handmadeRunnerId = ((await res.json()) as { runner: { id: number } }).runner.id;
  // A hand-made runner unit on the host, running.
  await w.sd.writeUnit(HANDMADE_UNIT, "[Unit]\nDescription=GitHub Actions Runner (acme-api.handmade)\n[Service]\nExecStart=/bin/sleep 100000\n");
  await w.sd.systemctl("daemon-reload");
  await w.sd.systemctl("start", HANDMADE_UNIT);
  await w.sd.waitForUnitState(HANDMADE_UNIT, "active");
  handmadeMainPid = (await w.sd.unitProperties(HANDMADE_UNIT, ["MainPID"])).MainPID ?? "";
});
afterAll(async () => {
  await w?.close();
});

async function hostFiles(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(w.sd.unitDir)).sort()) {
    out[f] = createHash("sha256").update(await readFile(join(w.sd.unitDir, f))).digest("hex");
  }
  return out;
}

async function mutatingCalls(): Promise<Record<string, number>> {
  const s = await w.gh.control.stats();
  const out: Record<string, number> = {};
  for (const [route, c] of Object.entries(s.byRoute)) if (!route.startsWith("GET ")) out[route] = c.calls;
  return out;
}

async function snapshot(): Promise<unknown> {
  const js = w.coord.jetstream();
  const seq = await KvSequenceAllocator.open(js);
  return {
    runners: (await w.gh.control.listRunners()).map((r) => ({ id: r.id, name: r.name, labels: r.labels, status: r.status })),
    mutating: await mutatingCalls(),
    units: await hostFiles(),
    unitStates: (await w.sd.systemctl("list-units", "--all", "--no-legend", "--plain", "lanekeeper-lane-*", "actions.runner.*")).stdout,
    records: await w.store.list(),
    sequence: await seq.current(HOST),
    agentAudit: (await w.agentAuditRecords()).length,
    laneDirs: (await readdir(w.agent.parts.dirs.root).catch(() => [])).sort(),
  };
}

async function expectHandmadeUntouched(): Promise<void> {
  const r = (await w.gh.control.listRunners()).find((x) => x.id === handmadeRunnerId);
  expect(r?.labels).toEqual(["self-hosted", "linux", "gpu"]);
  expect((await w.sd.unitProperties(HANDMADE_UNIT, ["ActiveState", "MainPID"])).MainPID).toBe(handmadeMainPid);
  expect((await w.sd.unitProperties(HANDMADE_UNIT, ["ActiveState"])).ActiveState).toBe("active");
  const audit = await w.auditRecords();
  expect(audit.some((a) => JSON.stringify(a).includes("handmade"))).toBe(false);
}

describe("apply --dry-run and unmanaged runners", () => {
  it("--dry-run leaves GitHub, the host, the lane store and the sequences exactly as they were; only dry-run records", async () => {
    const policy = w.policy(2);
    const { plan } = await observeAndPlan({ policy, github: w.github, store: w.store, inventory: w.inventory });
    expect(plan.actions.map((a) => a.kind)).toEqual(["create", "create"]);
    // The hand-made runners are seen and classified unmanaged, never planned for.
    expect(plan.classification.unmanaged.map((u) => u.runner.id)).toContain(handmadeRunnerId);
    expect(plan.actions.some((a) => a.laneId.includes("handmade"))).toBe(false);
    const auditBefore = (await w.auditRecords()).length;
    const before = await snapshot();
    const report = await w.engine(policy).run(plan, { dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.outcomes.map((o) => o.status)).toEqual(["dry-run", "dry-run"]);
    // Give anything that would have happened asynchronously (an agent acting, an inventory) time to show.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await snapshot()).toEqual(before);
    const added = (await w.auditRecords()).slice(auditBefore);
    expect(added.map((r) => r.phase)).toEqual(["dry-run", "dry-run", "dry-run"]);
    expect(added.filter((r) => r.action === "create").map((r) => r.laneId).sort()).toEqual(plan.actions.map((a) => a.laneId).sort());
    await expectHandmadeUntouched();
  });

  it("a real apply creates the lanes beside the hand-made runners, which stay untouched", async () => {
    const { report } = await w.apply(2);
    expect(report.outcomes.map((o) => [o.kind, o.status, o.code ?? ""])).toEqual([
      ["create", "succeeded", ""],
      ["create", "succeeded", ""],
    ]);
    await eventually(async () => ((await w.inventory.latest(HOST))?.snapshot.lanes.length ?? 0) === 2, "two lanes in the inventory");
    const s = await w.inventory.latest(HOST);
    // The agent reports the hand-made unit as unmanaged; the coordinator never plans for it.
    expect(s?.snapshot.unmanaged.map((u) => u.name)).toContain(HANDMADE_UNIT);
    await expectHandmadeUntouched();
  });

  it("scale down to zero removes only our lanes; the hand-made runners stay untouched", async () => {
    const { plan, report } = await w.apply(0);
    expect(plan.actions.map((a) => a.kind)).toEqual(["remove", "remove"]);
    expect(report.outcomes.map((o) => [o.status, o.code ?? ""])).toEqual([
      ["succeeded", ""],
      ["succeeded", ""],
    ]);
    expect((await w.gh.control.listRunners()).map((r) => r.id)).toEqual([handmadeRunnerId]);
    expect(Object.keys(await hostFiles()).filter((f) => f.startsWith("lanekeeper-lane-"))).toEqual([]);
    expect(await w.store.list()).toEqual([]);
    await expectHandmadeUntouched();
  });

  it("orphan cleanup: a registration whose lane vanished from its host is marked, then deleted; only ours", async () => {
    const created = await w.apply(1);
    expect(created.report.ok).toBe(true);
    const laneId = created.plan.actions[0]!.laneId;
    const runnerId = (await w.store.get(laneId))!.runnerId!;
    // The lane disappears from its host behind the coordinator's back (no deregistration): GitHub keeps it.
    await w.agent.manager.remove({ laneId, force: true });
    await eventually(async () => !(await w.inventory.latest(HOST))?.snapshot.lanes.some((l) => l.laneId === laneId), "the lane gone from the inventory");
    const graces = { orphanGraceMs: 0, registrationGraceMs: 0 };
    const mark = await w.apply(0, {}, graces);
    expect(mark.plan.actions.map((a) => [a.kind, a.reason.code])).toEqual([["mark-orphan", "ORPHAN_SEEN"]]);
    expect(mark.report.ok).toBe(true);
    expect(await w.store.get(laneId)).toMatchObject({ state: "orphaned", orphan: { kind: "registration-without-lane", runnerId } });
    expect((await w.gh.control.listRunners()).some((r) => r.id === runnerId)).toBe(true); // phase one changes nothing outside the store
    const cleanup = await w.apply(0, {}, graces);
    expect(cleanup.plan.actions.map((a) => [a.kind, a.reason.code])).toEqual([["cleanup-orphan", "ORPHAN_CONFIRMED"]]);
    expect(cleanup.report.outcomes.map((o) => [o.status, o.code ?? ""])).toEqual([["succeeded", ""]]);
    expect((await w.gh.control.listRunners()).map((r) => r.id)).toEqual([handmadeRunnerId]);
    expect(await w.store.get(laneId)).toBeUndefined();
    await expectHandmadeUntouched();
  });
});
