// Acceptance: remove touches only owned lanes; hand-made runners stay untouched (invariant 1). Beside the managed
// lanes each host has an unmanaged runner (a hand-made `actions.runner.acme-api.handmade.service` unit, a
// hand-made runner container) and GitHub has a registration with no host. `lanekeeper lanes remove` refuses
// every one of them by name; scaling the policy to zero removes every managed lane completely (unit or container,
// lane directory, registration) while a job runs to completion; the unmanaged ones are byte-for-byte as before.
import { randomBytes } from "node:crypto";
import type { Fleet } from "@lanekeeper/harness";
import { GITHUB_ONLY_RUNNER_NAME, HANDMADE_RUNNER_NAME } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apply,
  applyOk,
  describeCli,
  e2eFleet,
  eventually,
  expectJobsSucceeded,
  expectUnmanagedUntouched,
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

const SCOPE = "acme/api";
/**
 * The container host's id, unique per run: lane containers live in the machine's one podman store, where another
 * suite's fleet may have a host of the same name at the same time.
 */
const CT = `build03-${randomBytes(3).toString("hex")}`;

let fleet: Fleet;

beforeAll(async () => {
  fleet = await e2eFleet({
    agents: [
      { hostId: "build01", runtime: "systemd", capacity: 4 },
      { hostId: CT, runtime: "container", capacity: 4 },
    ],
    pools: {
      "linux-x64": { backend: "systemd", labels: ["lanes-systemd"] },
      "linux-container": { backend: "container", labels: ["lanes-container"] },
    },
    lanes: [
      { scope: SCOPE, pool: "linux-x64", count: 2, hosts: ["build01"] },
      { scope: SCOPE, pool: "linux-container", count: 1, hosts: [CT] },
    ],
  });
  await applyOk(fleet);
  await waitManagedOnline(fleet, 3);
});

afterAll(async () => {
  await fleet?.stop();
});

describe("remove", () => {
  it("refuses to remove anything it does not own, by any name, and changes nothing", async () => {
    const names = [HANDMADE_RUNNER_NAME, GITHUB_ONLY_RUNNER_NAME, fleet.handmade.container!.name, fleet.handmade.unit!.name];
    for (const name of names) {
      const { cli } = await laneCommand(fleet, "remove", name);
      expect(cli.code, `${name}: ${describeCli(cli)}`).not.toBe(0);
      expect(cli.stdout + cli.stderr, name).toMatch(/LANE_NOT_FOUND|LANE_NOT_MANAGED|INVALID_NAME|not managed|no lane/i);
    }
    await expectUnmanagedUntouched(fleet);
    await waitManagedOnline(fleet, 3);
  });

  it("lanes remove deletes one lane completely, after its running job", async () => {
    const { id: jobId } = await fleet.github.control.createJob(SCOPE, { labels: ["lanes-systemd"], durationMs: 8000 });
    const job = await eventually(async () => {
      const j = await fleet.github.control.getJob(jobId);
      return j.status === "in_progress" ? j : undefined;
    }, "job to start");
    const lane = job.runnerName!;
    const report = await laneCommandOk(fleet, "remove", lane);
    expect(report.outcomes.map((o) => [o.kind, o.laneId, o.status])).toEqual([["remove", lane, "succeeded"]]);
    await expectJobsSucceeded(fleet, [jobId]);
    expect((await managedRunners(fleet)).map((r) => r.name)).not.toContain(lane);
    expect(await laneUnits(fleet, "build01")).not.toContain(`lanekeeper-lane-${lane}.service`);
    expect(await laneDirs(fleet, "build01")).not.toContain(lane);
    await expectUnmanagedUntouched(fleet);
  });

  it("scaling the policy to zero removes every managed lane and nothing else", async () => {
    await fleet.editPolicy((doc) => {
      doc.lanes = [
        { scope: SCOPE, pool: "linux-x64", count: 0, hosts: ["build01"] },
        { scope: SCOPE, pool: "linux-container", count: 0, hosts: [CT] },
      ];
    });
    // Scale-down drains at most a few lanes per run (--max-removals); apply until the plan is empty.
    for (let i = 0; i < 5; i++) {
      if ((await pendingActions(fleet)).length === 0) break;
      const { cli, report } = await apply(fleet);
      expect(cli.code, describeCli(cli)).toBe(0);
      expect(report?.outcomes.every((o) => o.status === "succeeded"), describeCli(cli)).toBe(true);
    }
    expect(await pendingActions(fleet)).toEqual([]);
    expect(await managedRunners(fleet)).toEqual([]);
    expect(await laneUnits(fleet, "build01")).toEqual([]);
    expect(await laneDirs(fleet, "build01")).toEqual([]);
    expect(await laneContainers(CT)).toEqual([]);
    expect(await laneDirs(fleet, CT)).toEqual([]);
    for (const h of ["build01", CT]) expect((await fleet.agent(h).status()).lanes ?? []).toEqual([]);

    // Everything unmanaged is exactly as it was, and still reported as unmanaged.
    await expectUnmanagedUntouched(fleet);
    const plan = await planJson(fleet);
    expect(plan.classification.unmanaged.map((u) => u.name).sort()).toEqual([...fleet.handmade.registrations].sort());
    const b1 = await fleet.agent("build01").status();
    expect((b1.unmanaged ?? []).map((u) => u.name)).toContain(fleet.handmade.unit!.name);
    const b3 = await fleet.agent(CT).status();
    expect((b3.unmanaged ?? []).map((u) => u.name)).toContain(fleet.handmade.container!.name);
  });
});
