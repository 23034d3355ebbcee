// Acceptance: no mutation without explicit opt-in on both sides (invariant 3). On the coordinator side a lane may
// only use an enrolled, opted-in host and an opted-in scope: otherwise the policy is refused with the exact key
// to set. On the host side the agent refuses every mutating intent while `control.enabled` is false, and every
// intent whose scope, pool or backend is not in its allowlist; each refusal carries its reason code and a
// recovery note, and nothing is created anywhere (no unit, no directory, no registration).
import { readFile, writeFile } from "node:fs/promises";
import type { Fleet } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apply, auditChain, describeCli, e2eFleet, eventually, laneDirs, laneUnits, managedRunners, planJson } from "./e2e-fixture.js";

const SCOPE = "acme/api";

/** Each host says no in its own way; the reason the agent (or the planner, from its inventory) must give. */
const REFUSALS: Record<string, { agent: string; planner: string[] }> = {
  off01: { agent: "CONTROL_DISABLED", planner: ["HOST_CONTROL_DISABLED"] },
  scope01: { agent: "NOT_ALLOWED_SCOPE", planner: ["HOST_NOT_ALLOWED"] },
  pool01: { agent: "NOT_ALLOWED_POOL", planner: ["HOST_NOT_ALLOWED"] },
  backend01: { agent: "NOT_ALLOWED_BACKEND", planner: ["HOST_NOT_ALLOWED"] },
};

let fleet: Fleet;
let policyText: string;

beforeAll(async () => {
  fleet = await e2eFleet({
    repos: [SCOPE, "acme/web"],
    scopes: { [SCOPE]: { optIn: true }, "acme/web": { optIn: false } },
    pools: { "linux-x64": { backend: "systemd", labels: ["lanes-systemd"] } },
    agents: [
      // Enrolled and opted in on the coordinator side; each refuses on its own side.
      { hostId: "off01", runtime: "systemd", capacity: 1, control: { enabled: false } },
      { hostId: "scope01", runtime: "systemd", capacity: 1, control: { scopes: ["acme/web"] } },
      { hostId: "pool01", runtime: "systemd", capacity: 1, control: { pools: ["some-other-pool"] } },
      { hostId: "backend01", runtime: "systemd", capacity: 1, control: { backends: ["container"] } },
    ],
    handmade: { systemd: false, container: false, githubOnly: false },
  });
  policyText = await readFile(fleet.policyPath, "utf8");
});

afterAll(async () => {
  await fleet?.stop();
});

async function withPolicy(edit: (doc: Record<string, unknown>) => void): Promise<void> {
  await writeFile(fleet.policyPath, policyText);
  await fleet.editPolicy(edit);
}

describe("opt-in on the coordinator side", () => {
  it("refuses a lane on a host that has not opted in, naming the key to set", async () => {
    await withPolicy((doc) => {
      (doc.hosts as Record<string, { optIn: boolean }>).off01!.optIn = false;
      doc.lanes = [{ scope: SCOPE, pool: "linux-x64", count: 1, hosts: ["off01"] }];
    });
    for (const cmd of [["plan"], ["apply", "--yes"]]) {
      const r = await fleet.lanekeeper(cmd);
      expect(r.code, describeCli(r)).toBe(3);
      expect(r.stderr).toContain('host "off01" has not opted in; set hosts.off01.optIn: true');
    }
    expect(await managedRunners(fleet)).toEqual([]);
  });

  it("refuses a lane for a scope that has not opted in, naming the key to set", async () => {
    await withPolicy((doc) => {
      doc.lanes = [{ scope: "acme/web", pool: "linux-x64", count: 1, hosts: ["scope01"] }];
    });
    const r = await fleet.lanekeeper(["plan"]);
    expect(r.code, describeCli(r)).toBe(3);
    expect(r.stderr).toContain('scope "acme/web" has not opted in');
    expect(r.stderr).toContain('scopes["acme/web"].optIn: true');
  });

  it("a host that is enrolled but listed in no lanes entry gets nothing", async () => {
    await withPolicy((doc) => {
      doc.lanes = [{ scope: SCOPE, pool: "linux-x64", count: 1, hosts: ["scope01"] }];
    });
    const plan = await planJson(fleet);
    expect(plan.actions.every((a) => a.hostId === "scope01")).toBe(true);
  });
});

describe("opt-in on the host side", () => {
  it("every host refuses with its reason and a recovery note, and nothing is created", async () => {
    await withPolicy((doc) => {
      doc.lanes = [{ scope: SCOPE, pool: "linux-x64", count: 4, hosts: Object.keys(REFUSALS) }];
    });
    const { cli, report } = await apply(fleet);
    // Not one lane may be created: apply reports failure (or, when inventories already told the planner, plans
    // nothing and warns).
    expect(report?.outcomes.some((o) => o.status === "succeeded") ?? false, describeCli(cli)).toBe(false);
    // The plan apply acted on (apply reads the agents' signed inventories, which carry their allowlists).
    const plan = report?.plan ?? (await planJson(fleet));
    for (const [hostId, why] of Object.entries(REFUSALS)) {
      const outcome = report?.outcomes.find((o) => o.hostId === hostId && o.kind === "create");
      const warned = plan.warnings.some((w) => why.planner.includes(w.code) && (w.hostId === hostId || w.message.includes(hostId)));
      if (outcome !== undefined) {
        // Sent, refused by the agent: its reason code, the lane untouched, a recovery note.
        const seen = `${hostId}: ${JSON.stringify(outcome)}`;
        expect(outcome.status, seen).toBe("failed");
        expect(outcome.code, seen).toBe(why.agent);
        expect(outcome.safeState, seen).toBe("untouched");
        expect(outcome.recovery, seen).toContain(why.agent);
        // Nothing ran on the host: its audit chain holds no mutation, only the refusal with its reason.
        const records = await eventually(async () => {
          const r = await auditChain(`${fleet.agent(hostId).stateDir}/audit.log`);
          return r.some((x) => x.phase === "rejected" && x.reasonCode === why.agent) ? r : undefined;
        }, `${hostId}: the refusal in its audit chain`, 30_000);
        expect(records.filter((r) => r.phase === "started" || r.phase === "succeeded"), seen).toEqual([]);
      } else {
        // Never sent: the planner knew from the host's signed inventory and says why.
        expect(warned, `${hostId}: neither an outcome nor a warning; ${describeCli(cli)}`).toBe(true);
      }
      expect(await laneUnits(fleet, hostId)).toEqual([]);
      expect(await laneDirs(fleet, hostId)).toEqual([]);
      const status = await fleet.agent(hostId).status();
      expect(status.lanes ?? []).toEqual([]);
    }
    expect(cli.code, describeCli(cli)).not.toBe(0);
    // No registration was made: registration tokens were minted at most, never used.
    expect(await managedRunners(fleet)).toEqual([]);
    expect(await fleet.github.control.listRunners()).toEqual([]);
  });

  it("opting in on the host (allowlist edited, agent restarted) is what makes the same apply succeed", async () => {
    const agent = fleet.agent("pool01");
    await agent.editConfig((doc) => {
      (doc.control as { pools: string[] }).pools = ["linux-x64"];
    });
    await agent.restart();
    await withPolicy((doc) => {
      doc.lanes = [{ scope: SCOPE, pool: "linux-x64", count: 1, hosts: ["pool01"] }];
    });
    const { cli, report } = await apply(fleet);
    expect(cli.code, describeCli(cli)).toBe(0);
    expect(report?.outcomes.map((o) => [o.kind, o.hostId, o.status])).toEqual([["create", "pool01", "succeeded"]]);
    const runners = await managedRunners(fleet);
    expect(runners.map((r) => r.labels.includes("lk-host-pool01"))).toEqual([true]);
  });
});
