// A coordinator killed with -9 in the middle of an apply that creates lanes, against the real world: the built
// `lanekeeper apply` as a child process, a real nats-server (lane records, sequences, operation leases), the
// GitHub emulator and a real agent running lanes in a real systemd. The next CLI run must see the interrupted
// creates at once (within one operation-lease TTL), show them in `plan`, resume the ones whose intent never
// reached the agent under the same lane ids, never send again a create that took effect, and let `lanes remove`
// take such a record away. No lane may be duplicated or orphaned, and no create may run twice on the host.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { ExitCode } from "../../packages/coordinator/src/cli/exit-codes.js";
import { runCli } from "../../packages/coordinator/src/cli/program.js";
import { DEFAULT_OPERATION_LEASE_TTL_MS } from "../../packages/coordinator/src/apply/limits.js";
import { eventually } from "./agent-fixture.js";
import { startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

const BIN = fileURLToPath(new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url));

let w: ApplyWorld;
let policyPath = "";
let auditPath = "";

function env(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/root",
    LANEKEEPER_POLICY: policyPath,
    LK_TEST_GITHUB_TOKEN: w.gh.token,
    LK_TEST_NATS_PASSWORD: w.coordinatorUser.password,
    LANEKEEPER_OPERATOR: "carol",
  };
}

/** The built CLI as a child process (it is the one killed). */
function spawnCli(args: string[]): { child: ChildProcess; err: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: w.dir, env: { ...env(), LANEKEEPER_INSTANCE: "crashing-cli" }, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stdout?.on("data", () => undefined);
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, err: () => err, exit };
}

/** The CLI in-process (the next operator command after the crash). */
async function lk(args: string[]): Promise<{ code: number; out: string; err: string; json: unknown }> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), env: { ...env(), LANEKEEPER_INSTANCE: "next-cli" }, cwd: w.dir, now: () => Date.now() };
  const code = await runCli(args, io, { confirm: null });
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch {
    json = undefined;
  }
  return { code, out, err, json };
}

interface PlanJson {
  actions: { kind: string; laneId: string; reason: { code: string }; evidence: { source: string; lease?: string }[] }[];
  warnings: { code: string; laneId?: string; message: string }[];
}

async function writePolicy(count: number): Promise<void> {
  await writeFile(policyPath, w.policyText(count, { auditFile: auditPath, natsPasswordEnv: "LK_TEST_NATS_PASSWORD" }));
}

/** Creates the agent carried out, per lane id, from its audit chain (an intent that ran twice shows twice). */
async function agentCreates(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const r of await w.agentAuditRecords()) {
    if (r.action === "create" && r.phase === "succeeded" && r.laneId !== undefined) out.set(r.laneId, (out.get(r.laneId) ?? 0) + 1);
  }
  return out;
}

beforeAll(async () => {
  w = await startApplyWorld({ verifyTimeoutMs: 60_000 });
  policyPath = join(w.dir, "lanekeeper.yaml");
  auditPath = join(w.dir, "cli-audit.jsonl");
  await writePolicy(3);
});
afterAll(async () => {
  await w?.close();
});

describe("coordinator killed with -9 mid-apply", () => {
  let interrupted: string[] = [];

  it("kill -9 while the creates wait on GitHub: records stay `creating`, no intent reached the agent", async () => {
    // Every GitHub answer takes 3 s: the apply writes its three records, then waits for registration tokens.
    await w.gh.control.setFaults({ latencyMs: 3_000 });
    const p = spawnCli(["apply", "--yes", "--concurrency", "3"]);
    try {
      await eventually(async () => (await w.store.list()).filter((r) => r.state === "creating").length === 3, "three creating records", 60_000);
    } finally {
      p.child.kill("SIGKILL");
    }
    expect(await p.exit).toBeNull();
    await w.gh.control.clearFaults();
    const records = await w.store.list();
    interrupted = records.map((r) => r.laneId).sort();
    expect(records.map((r) => r.state)).toEqual(["creating", "creating", "creating"]);
    expect(await w.agent.manager.list()).toEqual([]);
    expect(await w.gh.control.listRunners()).toEqual([]);
  });

  it("plan shows each interrupted create at once (one lease TTL), with its evidence, and that it resumes under the same lane id", async () => {
    const t0 = Date.now();
    let plan: PlanJson | undefined;
    await eventually(async () => {
      const r = await lk(["plan", "--json"]);
      plan = r.json as PlanJson | undefined;
      return plan?.actions.filter((a) => a.reason.code === "CREATE_INTERRUPTED").length === 3;
    }, "plan shows three CREATE_INTERRUPTED creates", DEFAULT_OPERATION_LEASE_TTL_MS + 20_000);
    expect(Date.now() - t0).toBeLessThan(DEFAULT_OPERATION_LEASE_TTL_MS + 20_000);
    expect(plan?.actions.map((a) => `${a.kind}:${a.laneId}`).sort()).toEqual(interrupted.map((id) => `create:${id}`));
    expect(plan?.actions[0]?.evidence).toContainEqual(expect.objectContaining({ source: "operation", lease: "gone" }));
    expect(plan?.warnings.filter((w) => w.code === "CREATE_INTERRUPTED").map((x) => x.laneId).sort()).toEqual(interrupted);
    const human = await lk(["plan"]);
    expect(human.out).toMatch(/CREATE_INTERRUPTED/);
  });

  it("lanes remove takes away a record whose create never reached its host", async () => {
    const gone = interrupted[0] ?? "";
    const r = await lk(["lanes", "remove", gone]);
    expect(r.code, r.err + r.out).toBe(ExitCode.OK);
    expect((await w.store.list()).map((x) => x.laneId)).not.toContain(gone);
  });

  it("apply resumes the other two under their lane ids and replaces the removed one: three lanes, no orphan, no duplicate", async () => {
    const r = await lk(["apply", "--yes", "--json"]);
    expect(r.code, r.err).toBe(ExitCode.OK);
    const report = r.json as { outcomes: { kind: string; laneId: string; status: string }[] };
    const resumed = report.outcomes.filter((o) => interrupted.includes(o.laneId)).map((o) => `${o.kind}:${o.laneId}:${o.status}`).sort();
    expect(resumed).toEqual(interrupted.slice(1).map((id) => `create:${id}:succeeded`));
    const records = await w.store.list();
    expect(records).toHaveLength(3);
    expect(records.every((x) => x.state === "active")).toBe(true);
    const runners = await w.gh.control.listRunners();
    expect(runners.map((x) => x.name).sort()).toEqual(records.map((x) => x.laneId).sort());
    expect((await w.agent.manager.list()).map((l) => l.laneId).sort()).toEqual(records.map((x) => x.laneId).sort());
    for (const n of (await agentCreates()).values()) expect(n).toBe(1);
    const again = await lk(["plan", "--json"]);
    expect((again.json as PlanJson).actions).toEqual([]);
  });

  it("kill -9 after the create took effect on the host: it is never sent again, the record completes", async () => {
    await writePolicy(4);
    // Runners cannot reach GitHub: the agent creates the lane, the apply then waits for it to come online.
    await w.gh.control.setFaults({ refuseSessions: true });
    const before = new Set((await w.store.list()).map((r) => r.laneId));
    const p = spawnCli(["apply", "--yes"]);
    let laneId = "";
    try {
      await eventually(async () => {
        const fresh = (await w.store.list()).find((r) => !before.has(r.laneId));
        if (fresh === undefined) return false;
        laneId = fresh.laneId;
        return (await w.agent.manager.list()).some((l) => l.laneId === laneId);
      }, "the new lane exists on the host", 60_000);
    } finally {
      p.child.kill("SIGKILL");
    }
    await p.exit;
    expect((await w.store.get(laneId))?.state).toBe("creating");
    let plan: PlanJson | undefined;
    await eventually(async () => {
      plan = (await lk(["plan", "--json"])).json as PlanJson | undefined;
      return plan?.warnings.some((x) => x.code === "CREATE_INTERRUPTED" && x.laneId === laneId) === true;
    }, "plan warns about the interrupted create", DEFAULT_OPERATION_LEASE_TTL_MS + 20_000);
    expect(plan?.warnings.find((x) => x.laneId === laneId && x.code === "CREATE_INTERRUPTED")?.message).toMatch(/took effect/);
    expect(plan?.actions.filter((a) => a.laneId === laneId)).toEqual([]);
    await w.gh.control.clearFaults();
    await eventually(async () => (await w.gh.control.listRunners()).find((x) => x.name === laneId)?.status === "online", "runner online", 60_000);
    const r = await lk(["apply", "--yes", "--json"]);
    expect(r.code, r.err).toBe(ExitCode.OK);
    const outcomes = (r.json as { outcomes: { kind: string; laneId: string; reason?: string; status: string }[] }).outcomes;
    expect(outcomes.filter((o) => o.laneId === laneId).map((o) => `${o.kind}:${o.status}`)).toEqual(["update-record:succeeded"]);
    expect((await w.store.get(laneId))?.state).toBe("active");
    expect(await w.store.list()).toHaveLength(4);
    expect((await agentCreates()).get(laneId)).toBe(1);
  });
});
