// Acceptance: organization scopes end to end. The policy example documented in docs/coordinator.md ("Organization
// scopes") is read from the page and run as is: `org:acme` with `runnerGroup: builders`, two systemd lanes and one
// container lane. Each goes through the whole lifecycle: create (an organization runner in the group, online, with
// its canonical labels), drain with a job running (the job finishes, the draining lane carries only lk-lane-<id> and
// lk-draining), restart (back online in the group, labels restored), remove (registration, unit or container and lane
// directory gone). Beside them the organization has hand-made runners (an online `svc.sh`-style unit and a runner
// container in the Default group, a registration in `builders` itself); none is ever touched. Before the group
// exists, a create fails naming the missing group and the policy key, and leaves nothing behind.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { parsePolicy } from "@lanekeeper/shared";
import { FLEET_RUNNER_VERSION, type Fleet, type FleetLaneSpec, type FleetPoolSpec, type FleetRuntime, type RunnerView } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apply,
  applyOk,
  canonicalLabels,
  describeCli,
  e2eFleet,
  eventually,
  expectJobsSucceeded,
  expectUnmanagedUntouched,
  fleetState,
  identityOf,
  laneCommand,
  laneCommandOk,
  laneContainers,
  laneDirs,
  laneUnits,
  managedRunners,
  pendingActions,
  planJson,
  waitManagedOnline,
} from "./e2e-fixture.js";

const DOC = fileURLToPath(new URL("../../docs/coordinator.md", import.meta.url));
const MARKER = "<!-- org-scope-example -->";
const ORG = "acme";
const SCOPE = `org:${ORG}`;
const GROUP = "builders";
/** The repository whose workflows the group admits, and one of the same organization it does not admit. */
const REPO = `${ORG}/api`;
const OTHER_REPO = `${ORG}/web`;
/** An unmanaged registration in the lanes' own group, carrying the pools' capability label. */
const TEAM_RUNNER = "team-builder";
const JOB_MS = 6000;

/** The documented example: the fenced YAML block right after the marker on docs/coordinator.md. */
interface OrgExample {
  scopes: Record<string, { optIn: boolean; runnerGroup?: string }>;
  pools: Record<string, { backend: FleetRuntime; mode?: "persistent" | "ephemeral"; runnerVersion?: string; image?: string; labels: string[] }>;
  lanes: FleetLaneSpec[];
}

async function documentedExample(): Promise<OrgExample> {
  const text = await readFile(DOC, "utf8");
  const at = text.indexOf(MARKER);
  expect(at, `${DOC} has no ${MARKER}`).toBeGreaterThanOrEqual(0);
  const block = /```yaml\n([\s\S]*?)```/.exec(text.slice(at));
  expect(block, `no yaml block after ${MARKER}`).not.toBeNull();
  return parseYaml(block![1]!) as OrgExample;
}

let fleet: Fleet;
let example: OrgExample;
let groupId: number;
let teamRunner: { id: number; labels: string[] };
/** Lanes whose create failed while the group was missing: their ids are never used again. */
let failedLaneIds: string[] = [];

/** One REST call to the emulator with the fleet's admin token. */
async function rest<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${fleet.github.apiUrl}${path}`, {
    method,
    headers: { authorization: `token ${fleet.github.token}`, accept: "application/vnd.github+json", ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  expect(res.ok, `${method} ${path}: ${res.status} ${text}`).toBe(true);
  return (text === "" ? undefined : JSON.parse(text)) as T;
}

/** The pool's capability labels, from the documented example. */
function poolLabels(pool: string): string[] {
  return example.pools[pool]?.labels ?? [];
}

/** Pool and host of the example's lanes of one backend. */
function lanesOf(runtime: FleetRuntime): FleetLaneSpec {
  const lane = example.lanes.find((l) => example.pools[l.pool]?.backend === runtime);
  expect(lane, `the example has a ${runtime} lane`).toBeDefined();
  return lane!;
}

/** Every managed runner, each checked to be an organization runner in the group. */
async function orgLanes(): Promise<RunnerView[]> {
  const all = await managedRunners(fleet);
  for (const r of all) {
    expect({ name: r.name, scopeKind: r.scopeKind, scope: r.scope, groupId: r.groupId }).toEqual({ name: r.name, scopeKind: "org", scope: ORG, groupId });
  }
  return all;
}

beforeAll(async () => {
  example = await documentedExample();
  fleet = await e2eFleet({
    repos: [REPO, OTHER_REPO],
    orgs: [ORG],
    agents: [
      { hostId: "build01", runtime: "systemd", capacity: 4 },
      { hostId: "build02", runtime: "container", capacity: 4 },
    ],
    scopes: example.scopes,
    pools: Object.fromEntries(
      Object.entries(example.pools).map(([name, p]): [string, FleetPoolSpec] => [name, { backend: p.backend, labels: p.labels, ...(p.mode ? { mode: p.mode } : {}) }]),
    ),
    lanes: example.lanes,
  });
});

/** Creates the runner group (an organization admin's job, outside lanekeeper); it admits only acme/api. */
async function createGroup(): Promise<void> {
  const repo = (await (await fetch(`${fleet.github.url}/_emulator/repos`, { method: "POST", body: JSON.stringify({ repo: REPO }) })).json()) as { id: number };
  const group = await rest<{ id: number }>("POST", `/orgs/${ORG}/actions/runner-groups`, { name: GROUP, visibility: "selected", selected_repository_ids: [repo.id] });
  groupId = group.id;
  // Somebody else's registration in the same group, with the pools' capability label: unmanaged all the same.
  const jit = await rest<{ runner: { id: number; labels: { name: string }[] } }>("POST", `/orgs/${ORG}/actions/runners/generate-jitconfig`, {
    name: TEAM_RUNNER,
    runner_group_id: groupId,
    labels: [GROUP],
  });
  teamRunner = { id: jit.runner.id, labels: jit.runner.labels.map((l) => l.name).sort() };
}

afterAll(async () => {
  await fleet?.stop();
});

/** Invariant 1 for this suite: the fleet's hand-made org runners and the team's registration in the group. */
async function expectOrgUnmanagedUntouched(): Promise<void> {
  await expectUnmanagedUntouched(fleet);
  const team = (await fleet.github.control.listRunners()).find((r) => r.name === TEAM_RUNNER);
  expect(team && { id: team.id, labels: [...team.labels].sort(), groupId: team.groupId }).toEqual({ ...teamRunner, groupId });
}

/** Queues a job of acme/api for `labels` and waits until a lane runs it. */
async function busyLane(labels: string[], durationMs = JOB_MS): Promise<{ jobId: number; lane: RunnerView }> {
  const { id } = await fleet.github.control.createJob(REPO, { labels, durationMs });
  const job = await eventually(async () => {
    const j = await fleet.github.control.getJob(id);
    return j.status === "in_progress" ? j : undefined;
  }, `job ${id} to start`);
  const lane = (await orgLanes()).find((r) => r.id === job.runnerId);
  expect(lane, await fleetState(fleet)).toBeDefined();
  expect(job.runnerGroupId).toBe(groupId);
  return { jobId: id, lane: lane! };
}

describe("organization scope", () => {
  it("the documented example is what this suite runs", async () => {
    expect(example.scopes[SCOPE]).toEqual({ optIn: true, runnerGroup: GROUP });
    expect(example.lanes.every((l) => l.scope === SCOPE)).toBe(true);
    expect(new Set(example.lanes.map((l) => example.pools[l.pool]?.backend))).toEqual(new Set(["systemd", "container"]));
    expect(lanesOf("systemd").count).toBeGreaterThanOrEqual(2);
    expect(example.pools[lanesOf("systemd").pool]?.runnerVersion).toBe(FLEET_RUNNER_VERSION);
    // The fleet's policy is the example with this run's keys, URLs and image filled in.
    const filled = parsePolicy(await readFile(fleet.policyPath, "utf8"));
    expect(filled.scopes[SCOPE]?.runnerGroup).toBe(GROUP);
    expect(filled.lanes.map((l) => ({ ...l, hosts: [...l.hosts] }))).toEqual(example.lanes);
    for (const [name, p] of Object.entries(example.pools)) expect([...(filled.pools[name]?.labels ?? [])]).toEqual(p.labels);
  });

  it("create before the runner group exists fails, names the missing group and the policy key, and leaves nothing behind", async () => {
    const { cli, report } = await apply(fleet);
    expect(cli.code, describeCli(cli)).not.toBe(0);
    const creates = (report?.outcomes ?? []).filter((o) => o.kind === "create");
    expect(creates.length, describeCli(cli)).toBe(example.lanes.reduce((n, l) => n + l.count, 0));
    for (const o of creates) {
      expect({ status: o.status, code: o.code }).toEqual({ status: "failed", code: "RUNNER_CONFIGURE_FAILED" });
      expect(o.message).toContain(`the runner group "${GROUP}" does not exist in the organization ${ORG}`);
      expect(o.message).toContain(`scopes.${SCOPE}.runnerGroup`);
    }
    failedLaneIds = creates.map((o) => o.laneId);
    // Nothing registered, no unit, no container, no lane directory; the hand-made runners as they were.
    expect(await managedRunners(fleet)).toEqual([]);
    expect(await laneUnits(fleet, "build01")).toEqual([]);
    expect((await laneContainers("build02")).filter((n) => n.includes(lanesOf("container").pool))).toEqual([]);
    for (const h of ["build01", "build02"]) {
      expect(await laneDirs(fleet, h)).toEqual([]);
      expect((await fleet.agent(h).status()).lanes ?? []).toEqual([]);
    }
    await expectUnmanagedUntouched(fleet);
    // The organization admin creates the group; the next apply (next test) creates the lanes.
    await createGroup();
  });

  it("create: every lane is an organization runner in the group, online, with exactly its canonical labels", async () => {
    // Once the hosts have reported after the failure, the plan forgets the failed creates and creates anew.
    const plan = await eventually(async () => {
      const p = await planJson(fleet);
      return p.actions.filter((a) => a.kind === "forget-record").length === failedLaneIds.length ? p : undefined;
    }, "the plan to forget the failed creates");
    const creates = plan.actions.filter((a) => a.kind === "create");
    expect(creates.length).toBe(example.lanes.reduce((n, l) => n + l.count, 0));
    expect(creates.every((a) => a.scope === SCOPE)).toBe(true);
    // The org's hand-made runners (both groups) are seen and classified unmanaged, with nothing planned for them.
    expect(plan.classification.unmanaged.map((u) => u.name).sort()).toEqual([...fleet.handmade.registrations, TEAM_RUNNER].sort());
    expect(plan.classification.unmanaged.every((u) => u.scope === SCOPE)).toBe(true);

    // The failed creates' records are forgotten first; the new lanes get new ids.
    expect(plan.actions.filter((a) => a.kind === "forget-record").map((a) => a.laneId).sort()).toEqual([...failedLaneIds].sort());
    expect(creates.filter((a) => failedLaneIds.includes(a.laneId))).toEqual([]);
    const report = await applyOk(fleet);
    expect(report.outcomes.filter((o) => o.kind === "create").map((o) => o.laneId).sort()).toEqual(creates.map((a) => a.laneId).sort());
    const online = await waitManagedOnline(fleet, creates.length);
    for (const r of online) {
      const id = identityOf(r);
      expect([...r.labels].sort()).toEqual(canonicalLabels(id.laneId, id.hostId, id.pool, poolLabels(id.pool)));
      expect(r.name).toBe(id.laneId);
    }
    expect((await orgLanes()).length).toBe(creates.length);
    // GitHub's own views agree: the lanes are in the group's runner list, and none is a repository runner.
    const inGroup = await rest<{ runners: { name: string }[] }>("GET", `/orgs/${ORG}/actions/runner-groups/${groupId}/runners?per_page=100`);
    expect(inGroup.runners.map((r) => r.name).sort()).toEqual([...online.map((r) => r.name), TEAM_RUNNER].sort());
    const repoRunners = await rest<{ runners: unknown[] }>("GET", `/repos/${REPO}/actions/runners`);
    expect(repoRunners.runners).toEqual([]);
    // On the hosts: a unit per systemd lane, a container per container lane.
    const sd = lanesOf("systemd");
    const ct = lanesOf("container");
    expect((await laneUnits(fleet, "build01")).length).toBe(sd.count);
    expect((await laneContainers("build02")).filter((n) => n.includes(ct.pool)).length).toBe(ct.count);
    expect(await pendingActions(fleet)).toEqual([]);
    await expectOrgUnmanagedUntouched();
  });

  it("jobs reach the lanes through the group: a repository the group admits gets them, another one does not", async () => {
    // Oldest job first: the other repository's job is queued first and passed over, because the group does not
    // admit that repository, while acme/api's job runs on a lane.
    const refused = await fleet.github.control.createJob(OTHER_REPO, { labels: [GROUP], durationMs: 500 });
    const admitted = await fleet.github.control.createJob(REPO, { labels: [GROUP], durationMs: 500 });
    await expectJobsSucceeded(fleet, [admitted.id]);
    const ran = await fleet.github.control.getJob(admitted.id);
    expect((await orgLanes()).map((r) => r.id)).toContain(ran.runnerId);
    expect(ran.runnerGroupId).toBe(groupId);
    const still = await fleet.github.control.getJob(refused.id);
    expect({ status: still.status, runnerId: still.runnerId }).toEqual({ status: "queued", runnerId: null });
    await fleet.github.control.cancelJob(refused.id);
  });

  describe.each(["systemd", "container"] as const)("%s lane", (runtime) => {
    let laneName = "";

    it("drain waits for the running job; meanwhile the lane carries only lk-lane-<id> and lk-draining", async () => {
      const { pool } = lanesOf(runtime);
      const { jobId, lane } = await busyLane(poolLabels(pool));
      laneName = lane.name;
      expect(identityOf(lane).pool).toBe(pool);
      const drain = laneCommand(fleet, "drain", lane.name);
      let drainFinishedAt = 0;
      void drain.then(() => (drainFinishedAt = Date.now()));

      const draining = await eventually(async () => {
        const r = (await orgLanes()).find((x) => x.id === lane.id);
        return r?.labels.includes("lk-draining") ? r : undefined;
      }, `${lane.name} to show lk-draining`);
      expect([...draining.labels].sort()).toEqual(["lk-draining", `lk-lane-${lane.name}`]);
      expect(draining.groupId).toBe(groupId);

      const { cli, report } = await drain;
      expect(cli.code, describeCli(cli)).toBe(0);
      expect(report?.ok, describeCli(cli)).toBe(true);
      await expectJobsSucceeded(fleet, [jobId]);
      const job = await fleet.github.control.getJob(jobId);
      expect(job.runnerId).toBe(lane.id);
      expect(Date.parse(job.completedAt ?? "")).toBeLessThanOrEqual(drainFinishedAt);
      // Drained, not removed: still the same registration in the group, nothing a workflow can target.
      const after = (await orgLanes()).find((r) => r.id === lane.id);
      expect([...(after?.labels ?? [])].sort()).toEqual(["lk-draining", `lk-lane-${lane.name}`]);
      await expectOrgUnmanagedUntouched();
    });

    it("restart brings the drained lane back online in the group with its canonical labels, and it takes jobs", async () => {
      expect(laneName).not.toBe("");
      const before = (await orgLanes()).find((r) => r.name === laneName);
      expect(before).toBeDefined();
      const report = await laneCommandOk(fleet, "restart", laneName);
      expect(report.outcomes.map((o) => [o.kind, o.laneId, o.status])).toEqual([["restart", laneName, "succeeded"]]);
      const total = example.lanes.reduce((n, l) => n + l.count, 0);
      const back = (await waitManagedOnline(fleet, total)).find((r) => r.name === laneName);
      expect(back?.id).toBe(before!.id);
      const id = identityOf(back!);
      expect([...back!.labels].sort()).toEqual(canonicalLabels(laneName, id.hostId, lanesOf(runtime).pool, poolLabels(lanesOf(runtime).pool)));
      expect((await orgLanes()).find((r) => r.name === laneName)?.groupId).toBe(groupId);
      const { id: next } = await fleet.github.control.createJob(REPO, { labels: [GROUP, `lk-lane-${laneName}`], durationMs: 300 });
      await expectJobsSucceeded(fleet, [next]);
      await expectOrgUnmanagedUntouched();
    });
  });

  it("remove: lanes remove and a scale-down to zero delete registration, unit or container and directory, nothing else", async () => {
    await fleet.editPolicy((doc) => {
      doc.lanes = example.lanes.map((l) => ({ ...l, count: 0 }));
    });
    // An explicit `lanes remove` of a systemd lane with a job running: it waits for the job.
    const { pool } = lanesOf("systemd");
    const { jobId, lane } = await busyLane(poolLabels(pool));
    const report = await laneCommandOk(fleet, "remove", lane.name);
    expect(report.outcomes.map((o) => [o.kind, o.laneId, o.status])).toEqual([["remove", lane.name, "succeeded"]]);
    await expectJobsSucceeded(fleet, [jobId]);
    expect((await fleet.github.control.listRunners()).map((r) => r.name)).not.toContain(lane.name);
    expect(await laneUnits(fleet, "build01")).not.toContain(`lanekeeper-lane-${lane.name}.service`);
    expect(await laneDirs(fleet, "build01")).not.toContain(lane.name);

    // The rest goes by the policy (scale-down removes at most a few lanes per run: apply until nothing is left).
    for (let i = 0; i < 5; i++) {
      if ((await pendingActions(fleet)).length === 0) break;
      const { cli, report: r } = await apply(fleet);
      expect(cli.code, describeCli(cli)).toBe(0);
      expect(r?.outcomes.every((o) => o.status === "succeeded"), describeCli(cli)).toBe(true);
    }
    expect(await pendingActions(fleet)).toEqual([]);
    expect(await managedRunners(fleet)).toEqual([]);
    const inGroup = await rest<{ runners: { name: string }[] }>("GET", `/orgs/${ORG}/actions/runner-groups/${groupId}/runners`);
    expect(inGroup.runners.map((r) => r.name)).toEqual([TEAM_RUNNER]);
    expect(await laneUnits(fleet, "build01")).toEqual([]);
    expect(await laneDirs(fleet, "build01")).toEqual([]);
    expect((await laneContainers("build02")).filter((n) => n.includes(lanesOf("container").pool))).toEqual([]);
    expect(await laneDirs(fleet, "build02")).toEqual([]);
    for (const h of ["build01", "build02"]) expect((await fleet.agent(h).status()).lanes ?? []).toEqual([]);

    // Every hand-made org runner is exactly as it was, and still reported as unmanaged.
    await expectOrgUnmanagedUntouched();
    const plan = await planJson(fleet);
    expect(plan.classification.unmanaged.map((u) => u.name).sort()).toEqual([...fleet.handmade.registrations, TEAM_RUNNER].sort());
    expect(((await fleet.agent("build01").status()).unmanaged ?? []).map((u) => u.name)).toContain(fleet.handmade.unit!.name);
    expect(((await fleet.agent("build02").status()).unmanaged ?? []).map((u) => u.name)).toContain(fleet.handmade.container!.name);
  });
});
