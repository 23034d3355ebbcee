// Acceptance: dry-run changes nothing and writes only the plan; every mutation leaves `planned`, `started` and a
// terminal audit record, in a chain that verifies (invariant 5), on the coordinator and on the agents; a tampered
// chain is caught by `lanekeeper audit verify`; no secret reaches an audit record (invariant 6).
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AuditRecord } from "@lanekeeper/shared";
import type { Fleet } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apply,
  applyOk,
  auditChain,
  describeCli,
  e2eFleet,
  expectCompleteOperations,
  laneCommand,
  laneCommandOk,
  laneDirs,
  laneUnits,
  managedRunners,
  waitManagedOnline,
} from "./e2e-fixture.js";

const SCOPE = "acme/api";

let fleet: Fleet;

beforeAll(async () => {
  fleet = await e2eFleet({
    agents: [{ hostId: "build01", runtime: "systemd", capacity: 4 }],
    pools: { "linux-x64": { backend: "systemd", labels: ["lanes-systemd"] } },
    lanes: [{ scope: SCOPE, pool: "linux-x64", count: 2, hosts: ["build01"] }],
    handmade: { container: false },
  });
});

afterAll(async () => {
  await fleet?.stop();
});

const coordinatorAudit = (): Promise<AuditRecord[]> => auditChain(fleet.auditPath);
const agentAudit = (): Promise<AuditRecord[]> => auditChain(join(fleet.agent("build01").stateDir, "audit.log"));

describe("dry run", () => {
  it("apply --dry-run reports what it would do, changes nothing, and audits only the plan", async () => {
    const runnersBefore = await fleet.github.control.listRunners();
    const { cli, report } = await apply(fleet, ["--dry-run"]);
    expect(cli.code, describeCli(cli)).toBe(0);
    expect(report?.dryRun).toBe(true);
    expect(report?.outcomes.length).toBe(2);
    expect(report?.outcomes.every((o) => o.status === "dry-run" && o.intentIds.length === 0)).toBe(true);
    // Nothing on GitHub, nothing on the host.
    expect(await fleet.github.control.listRunners()).toEqual(runnersBefore);
    expect(await laneUnits(fleet, "build01")).toEqual([]);
    expect(await laneDirs(fleet, "build01")).toEqual([]);
    expect(await agentAudit()).toEqual([]);
    // The coordinator's chain holds the plan and nothing that claims a change.
    const records = await coordinatorAudit();
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((r) => r.phase === "dry-run")).toBe(true);
  });
});

describe("audit", () => {
  it("every mutation has planned, started and a terminal record on both sides, and the chains verify", async () => {
    await applyOk(fleet);
    const online = await waitManagedOnline(fleet, 2);
    const [a, b] = online.map((r) => r.name);
    await laneCommandOk(fleet, "drain", a!);
    await laneCommandOk(fleet, "release", a!);
    await laneCommandOk(fleet, "restart", b!);
    await laneCommandOk(fleet, "remove", a!);
    await applyOk(fleet); // converges back to 2 lanes: one more create
    await waitManagedOnline(fleet, 2);

    const coord = await coordinatorAudit();
    const ops = expectCompleteOperations(coord);
    const started = [...ops.values()].filter((list) => list.some((r) => r.phase === "started"));
    // 2 creates, drain, release, restart, remove, 1 create: at least seven operations that changed something.
    expect(started.length).toBeGreaterThanOrEqual(7);
    for (const lane of [a!, b!]) expect(coord.some((r) => r.laneId === lane && r.phase === "succeeded")).toBe(true);

    const agent = await agentAudit();
    expectCompleteOperations(agent);
    expect(agent.some((r) => r.laneId === a && r.action.includes("remove") && r.phase === "succeeded")).toBe(true);

    // lanekeeper audit verify agrees with the file.
    const v = await fleet.lanekeeper(["audit", "verify", "--json"]);
    expect(v.code, describeCli(v)).toBe(0);
    expect(v.json).toMatchObject({ ok: true, count: coord.length });
    const av = await fleet.agent("build01").cli(["audit", "verify", "--json"]);
    expect(av.code, describeCli(av)).toBe(0);
    expect(av.json).toMatchObject({ ok: true, count: agent.length });
  });

  it("no secret reaches an audit record", async () => {
    const texts = [await readFile(fleet.auditPath, "utf8"), await readFile(join(fleet.agent("build01").stateDir, "audit.log"), "utf8")];
    for (const t of texts) {
      expect(t).not.toContain(fleet.github.token);
      expect(t).not.toContain(fleet.coordinatorEnv.LK_NATS_PASSWORD!);
      expect(t).not.toMatch(/PRIVATE KEY/);
      // Registration, remove and JIT tokens are 29-character upper-case alphanumerics on GitHub.
      expect(t).not.toMatch(/"(token|registrationToken|removeToken|jitConfig|encoded_jit_config)"\s*:/i);
    }
  });

  it("a tampered chain is reported with the line where it breaks", async () => {
    const copy = join(fleet.dir, "audit-tampered.jsonl");
    const lines = (await readFile(fleet.auditPath, "utf8")).split("\n");
    const i = Math.min(3, lines.length - 2);
    // Backdate one record by a millisecond: a change nobody could see without the hash chain.
    const tampered = lines[i]!.replace(/"at":(\d+)/, (_m, n: string) => `"at":${Number(n) - 1}`);
    expect(tampered).not.toBe(lines[i]);
    lines[i] = tampered;
    await writeFile(copy, lines.join("\n"));
    const r = await fleet.lanekeeper(["audit", "verify", "--file", copy]);
    expect(r.code, describeCli(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(new RegExp(`line ${i + 1}`));
    expect(await managedRunners(fleet)).toHaveLength(2);
  });

  it("plan shows what apply would do: the same actions as apply --dry-run", async () => {
    await fleet.editPolicy((doc) => {
      (doc.lanes as { count: number }[])[0]!.count = 1;
    });
    const plan = await fleet.lanekeeper(["plan", "--json"]);
    expect(plan.code, describeCli(plan)).toBe(0);
    const planned = ((plan.json as { actions: { kind: string; laneId: string }[] }).actions ?? [])
      .filter((a) => a.kind !== "update-record")
      .map((a) => `${a.kind} ${a.laneId}`)
      .sort();
    const { cli, report } = await apply(fleet, ["--dry-run"]);
    expect(cli.code, describeCli(cli)).toBe(0);
    const wouldDo = (report?.outcomes ?? [])
      .filter((o) => o.kind !== "update-record")
      .map((o) => `${o.kind} ${o.laneId}`)
      .sort();
    // Scaling 2 → 1 drains one lane: both must say so (and name the same lane).
    expect(wouldDo.length).toBeGreaterThan(0);
    expect(planned).toEqual(wouldDo);
    await fleet.editPolicy((doc) => {
      (doc.lanes as { count: number }[])[0]!.count = 2;
    });
  });

  it("commands run by several operators at once keep one valid chain", async () => {
    // Two operators hold (then release) a lane each at the same moment, while a third asks for a dry run: three
    // lanekeeper processes whose open → append windows overlap, each writing planned/started/terminal records.
    const lanes = (await managedRunners(fleet)).map((r) => r.name).slice(0, 2);
    expect(lanes.length).toBe(2);
    for (const op of ["hold", "release"] as const) {
      const runs = await Promise.all([...lanes.map((l) => laneCommand(fleet, op, l)), apply(fleet, ["--dry-run"])]);
      for (const r of runs) expect(r.cli.code, describeCli(r.cli)).toBe(0);
    }
    const v = await fleet.lanekeeper(["audit", "verify", "--json"]);
    expect(v.code, describeCli(v)).toBe(0);
    expect(v.json).toMatchObject({ ok: true });
    await coordinatorAudit();
  });
});
