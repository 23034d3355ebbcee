// Acceptance: `lanekeeper apply` creates lanes with the canonical labels and GitHub shows them online. A systemd
// lane (unit in a real systemd, marked and signed) and a container lane (podman, image pinned by digest, labels
// carrying the markers) come online with exactly `lk-managed`, `lk-lane-<id>`, `lk-host-<host>`, `lk-pool-<pool>`
// and the pool's labels, run jobs, and a second apply has nothing left to do.
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand, type Fleet } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyOk,
  canonicalLabels,
  e2eFleet,
  expectJobsSucceeded,
  expectUnmanagedUntouched,
  identityOf,
  laneContainers,
  laneDirs,
  laneUnits,
  planJson,
  waitManagedOnline,
} from "./e2e-fixture.js";

const SCOPE = "acme/api";
/**
 * The container host's id, unique per run: lane containers live in the machine's one podman store, where another
 * suite's fleet may have a host of the same name at the same time.
 */
const CT = `build03-${randomBytes(3).toString("hex")}`;
const POOLS = {
  "linux-x64": { backend: "systemd" as const, labels: ["linux", "lanes-systemd"] },
  "linux-container": { backend: "container" as const, labels: ["linux", "lanes-container"] },
};

let fleet: Fleet;

beforeAll(async () => {
  fleet = await e2eFleet({
    agents: [
      { hostId: "build01", runtime: "systemd", capacity: 4 },
      { hostId: CT, runtime: "container", capacity: 4 },
    ],
    pools: POOLS,
    lanes: [
      { scope: SCOPE, pool: "linux-x64", count: 2, hosts: ["build01"] },
      { scope: SCOPE, pool: "linux-container", count: 1, hosts: [CT] },
    ],
  });
});

afterAll(async () => {
  await fleet?.stop();
});

describe("create", () => {
  it("apply creates every planned lane; GitHub shows each online with exactly its canonical labels", async () => {
    const planned = (await planJson(fleet)).actions.filter((a) => a.kind === "create");
    expect(planned.length).toBe(3);
    const report = await applyOk(fleet);
    expect(report.outcomes.map((o) => o.laneId).sort()).toEqual(planned.map((a) => a.laneId).sort());

    const online = await waitManagedOnline(fleet, 3);
    for (const r of online) {
      const id = identityOf(r);
      expect(r.name).toBe(id.laneId);
      const pool = POOLS[id.pool as keyof typeof POOLS];
      expect(pool, r.labels.join(",")).toBeDefined();
      expect([...r.labels].sort()).toEqual(canonicalLabels(id.laneId, id.hostId, id.pool, pool.labels));
      expect(r.scope).toBe(SCOPE);
      expect(r.busy).toBe(false);
      expect(r.ephemeral).toBe(false);
    }
    expect(online.filter((r) => identityOf(r).hostId === "build01").length).toBe(2);
    expect(online.filter((r) => identityOf(r).hostId === CT).length).toBe(1);
  });

  it("the hosts hold exactly those lanes: marked units in systemd, labelled containers in podman", async () => {
    const online = await waitManagedOnline(fleet, 3);
    const byHost = (h: string): string[] => online.filter((r) => identityOf(r).hostId === h).map((r) => r.name).sort();

    // systemd: one marked unit per lane, active in the host's own systemd, and the signed lane.json.
    const sd = fleet.agent("build01").sandbox!;
    expect(await laneUnits(fleet, "build01")).toEqual(byHost("build01").map((l) => `lanekeeper-lane-${l}.service`));
    for (const lane of byHost("build01")) {
      const unit = await readFile(join(sd.unitDir, `lanekeeper-lane-${lane}.service`), "utf8");
      expect(unit).toContain(`X-Lanekeeper-Lane=${lane}`);
      expect(unit).toContain("X-Lanekeeper-Host=build01");
      expect(unit).toMatch(/^X-Lanekeeper-Marker=\S+$/m);
      expect((await sd.unitProperties(`lanekeeper-lane-${lane}.service`, ["ActiveState"])).ActiveState).toBe("active");
      const record = JSON.parse(await readFile(join(fleet.agent("build01").laneRoot, lane, "lane.json"), "utf8")) as { payload: string };
      expect(JSON.parse(record.payload)).toMatchObject({ laneId: lane, hostId: "build01", scope: SCOPE, pool: "linux-x64" });
    }
    expect(await laneDirs(fleet, "build01")).toEqual(byHost("build01"));

    // container: the image pinned by digest, the three marker labels, running.
    expect(await laneContainers(CT)).toEqual(byHost(CT).map((l) => `lanekeeper-lane-${l}`));
    for (const lane of byHost(CT)) {
      const r = await runCommand("podman", ["inspect", "--format", "{{json .Config.Labels}} {{.State.Running}} {{.Image}}", `lanekeeper-lane-${lane}`]);
      const [labels = "{}", running, image] = r.stdout.trim().split(" ");
      expect(JSON.parse(labels)).toMatchObject({ "dev.lanekeeper.lane": lane, "dev.lanekeeper.host": CT });
      expect(JSON.parse(labels)["dev.lanekeeper.marker"]).toBeTruthy();
      expect(running).toBe("true");
      // The image the allowlisted digest names (podman reports the image id of a container).
      expect(image?.replace(/^sha256:/, "")).toBe(fleet.image!.id.replace(/^sha256:/, ""));
    }

    // The agents report the same lanes over their status sockets.
    for (const h of ["build01", CT]) {
      const status = await fleet.agent(h).status();
      expect((status.lanes ?? []).map((l) => l.laneId).sort()).toEqual(byHost(h));
    }
  });

  it("the lanes run jobs that match their pool labels", async () => {
    const ids: number[] = [];
    for (const labels of [["lanes-systemd"], ["lanes-systemd"], ["lanes-container"]]) {
      ids.push((await fleet.github.control.createJob(SCOPE, { labels, durationMs: 1500 })).id);
    }
    await expectJobsSucceeded(fleet, ids);
    const jobs = (await fleet.github.control.listJobs()).filter((j) => ids.includes(j.id));
    const managed = new Set((await waitManagedOnline(fleet, 3)).map((r) => r.name));
    for (const j of jobs) expect(managed.has(j.runnerName ?? ""), `${j.name} ran on ${j.runnerName}`).toBe(true);
  });

  it("a second apply has nothing to do, and nothing unmanaged was touched", async () => {
    const plan = await planJson(fleet);
    expect(plan.actions.filter((a) => a.kind !== "update-record")).toEqual([]);
    const report = await applyOk(fleet);
    expect(report.outcomes.filter((o) => o.kind !== "update-record")).toEqual([]);
    await waitManagedOnline(fleet, 3);
    await expectUnmanagedUntouched(fleet);
  });
});
