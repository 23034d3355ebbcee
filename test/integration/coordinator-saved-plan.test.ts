// `lanekeeper plan` exit codes and saved plans, through the real CLI program against the real world: nats-server,
// the GitHub emulator, a real agent running lanes in a real systemd. `plan --detailed-exitcode` is 2 with changes
// and 0 without; a degraded view (NATS down, the coordinator key unreadable) is 17 with DEGRADED lines and never
// "matches the policy"; `plan --out` then `apply <file>` applies exactly the saved actions, and a saved plan the
// world or the policy has moved past is refused whole (PLAN_STALE, exit 18) with nothing changed.
import { readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { ExitCode } from "../../packages/coordinator/src/cli/exit-codes.js";
import { runCli } from "../../packages/coordinator/src/cli/program.js";
import { eventually } from "./agent-fixture.js";
import { SCOPE, startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

let w: ApplyWorld;
let policyPath = "";
let auditPath = "";

interface Run {
  code: number;
  out: string;
  err: string;
  json: unknown;
}

async function lk(args: string[]): Promise<Run> {
  let out = "";
  let err = "";
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    env: {
      PATH: process.env.PATH,
      LANEKEEPER_POLICY: policyPath,
      LK_TEST_GITHUB_TOKEN: w.gh.token,
      LK_TEST_NATS_PASSWORD: w.coordinatorUser.password,
      LANEKEEPER_OPERATOR: "carol",
    },
    cwd: w.dir,
    now: () => Date.now(),
  };
  const code = await runCli(args, io, { confirm: null });
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch {
    json = undefined;
  }
  return { code, out, err, json };
}

const policyText = (count: number): string => w.policyText(count, { auditFile: auditPath, natsPasswordEnv: "LK_TEST_NATS_PASSWORD" });
const setPolicy = (count: number): Promise<void> => writeFile(policyPath, policyText(count));
const managedRunners = async (): Promise<{ id: number; name: string; labels: string[] }[]> =>
  (await w.gh.control.listRunners()).filter((r) => r.labels.some((l) => l.startsWith("lk-lane-")));
const auditLines = async (): Promise<number> => (await readFile(auditPath, "utf8").catch(() => "")).split("\n").filter((l) => l !== "").length;

interface SavedFile {
  format: string;
  version: number;
  planId: string;
  createdAtMs: number;
  expiresAtMs: number;
  policy: { path: string; digest: string };
  actions: { id: string; kind: string; laneId: string; guards: { kind: string }[]; evidence: unknown[]; steps: string[] }[];
}

beforeAll(async () => {
  w = await startApplyWorld();
  policyPath = join(w.dir, "lanekeeper.yaml");
  auditPath = join(w.dir, "cli-audit.jsonl");
  await setPolicy(1);
}, 120_000);
afterAll(async () => {
  await w?.close();
});

let laneId = "";

describe("plan --detailed-exitcode and saved plans", () => {
  it("plan --detailed-exitcode --out: exit 2 with changes; the file holds the actions, their guards and evidence, the policy digest, an expiry", async () => {
    const r = await lk(["plan", "--detailed-exitcode", "--out", "create.json", "--expires-in", "10m"]);
    expect(r.code, r.out + r.err).toBe(2);
    expect(r.err).not.toContain("DEGRADED");
    expect(r.err).toContain("lanekeeper apply create.json");
    const saved = JSON.parse(await readFile(join(w.dir, "create.json"), "utf8")) as SavedFile;
    expect(saved).toMatchObject({ format: "lanekeeper.saved-plan", version: 1, policy: { path: policyPath } });
    expect(saved.policy.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(saved.expiresAtMs - saved.createdAtMs).toBe(600_000);
    expect(saved.actions.map((a) => a.kind)).toEqual(["create"]);
    expect(saved.actions[0]!.guards.map((g) => g.kind)).toEqual(expect.arrayContaining(["record-revision", "host-allows", "lane-id-unused"]));
    expect(saved.actions[0]!.evidence.length).toBeGreaterThan(0);
    laneId = saved.actions[0]!.laneId;
  });

  it("apply <file> --dry-run re-checks and records the plan, changing nothing", async () => {
    const r = await lk(["apply", "create.json", "--dry-run", "--json"]);
    expect(r.code, r.out + r.err).toBe(ExitCode.OK);
    expect(r.json).toMatchObject({ dryRun: true, ok: true, outcomes: [{ kind: "create", laneId, status: "dry-run" }], savedPlan: { planId: expect.any(String) } });
    expect(await managedRunners()).toEqual([]);
    expect(await w.store.list()).toEqual([]);
  });

  it("apply <file> --yes applies exactly the saved action: the lane it names is created, nothing else", async () => {
    const r = await lk(["apply", "create.json", "--yes", "--json", "--concurrency", "2"]);
    expect(r.code, r.out + r.err).toBe(ExitCode.OK);
    expect((r.json as { outcomes: { kind: string; laneId: string; status: string }[] }).outcomes).toEqual([
      expect.objectContaining({ kind: "create", laneId, status: "succeeded" }),
    ]);
    const runners = await managedRunners();
    expect(runners.map((x) => x.name)).toEqual([laneId]);
    expect((await w.store.list()).map((x) => x.laneId)).toEqual([laneId]);
  });

  it("plan --detailed-exitcode: 0 once the fleet matches, and it says so", async () => {
    const r = await eventually(async () => {
      const x = await lk(["plan", "--detailed-exitcode"]);
      return x.code === 0 ? x : undefined;
    }, "plan --detailed-exitcode exits 0", 60_000, 500);
    expect(r.out).toContain("No actions: the fleet matches the policy");
  });

  it("a bad command line with --detailed-exitcode exits 1, never 2", async () => {
    const r = await lk(["plan", "--detailed-exitcode", "--no-such-option"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/USAGE/);
  });

  it("NATS down: exit 17 with a DEGRADED line naming NATS and the fix, no 'matches the policy', the healthy lane not called orphaned, no file saved", async () => {
    const down = join(w.dir, "nats-down.yaml");
    await writeFile(down, policyText(1).replace(/natsUrl: .*/, 'natsUrl: "nats://127.0.0.1:1"'));
    for (const extra of [[], ["--detailed-exitcode"]]) {
      const r = await lk(["plan", "--policy", down, "--out", "down.json", ...extra]);
      expect(r.code, r.out + r.err).toBe(ExitCode.DEGRADED);
      expect(r.err).toMatch(/^DEGRADED \(NATS_UNREACHABLE\): NATS at nats:\/\/127\.0\.0\.1:1 could not be reached/m);
      expect(r.err).toMatch(/^ {2}fix: start NATS/m);
      expect(r.out).toMatch(/^!! DEGRADED VIEW/m);
      expect(r.out).not.toMatch(/matches the policy as far/);
      expect(r.out).toMatch(/0 orphaned, 1 not judged/);
      expect(r.err).toContain("NOT saved");
      expect(existsSync(join(w.dir, "down.json"))).toBe(false);
    }
    const j = await lk(["plan", "--policy", down, "--json"]);
    expect(j.code).toBe(ExitCode.DEGRADED);
    expect(j.json).toMatchObject({ degraded: true, gaps: [{ code: "NATS_UNREACHABLE" }], classification: { lanes: { orphaned: 0, unverified: 1 } } });
  });

  it("coordinator key unreadable: exit 17, DEGRADED (COORDINATOR_KEY_UNREADABLE) naming the key file", async () => {
    const noKey = join(w.dir, "no-key.yaml");
    await writeFile(noKey, policyText(1).replace(/keyFile: .*/, `keyFile: ${JSON.stringify(join(w.dir, "missing.pem"))}`));
    const r = await lk(["plan", "--policy", noKey]);
    expect(r.code, r.out + r.err).toBe(ExitCode.DEGRADED);
    expect(r.err).toContain(`DEGRADED (COORDINATOR_KEY_UNREADABLE): the coordinator key ${join(w.dir, "missing.pem")} could not be read`);
    expect(r.out).not.toMatch(/matches the policy as far/);
  });

  it("a file that is not a saved plan: PLAN_INVALID (exit 6) before anything is opened", async () => {
    await writeFile(join(w.dir, "bad.json"), JSON.stringify({ format: "lanekeeper.saved-plan", version: 1, actions: "all" }));
    const r = await lk(["apply", "bad.json", "--yes", "--json"]);
    expect(r.code).toBe(ExitCode.INPUT);
    expect(r.json).toMatchObject({ error: { code: "PLAN_INVALID", hint: expect.stringContaining("lanekeeper plan --out bad.json again") } });
  });

  it("the policy edited after plan --out: PLAN_STALE (POLICY_CHANGED, exit 18), nothing created", async () => {
    await setPolicy(2);
    const p = await lk(["plan", "--out", "grow.json"]);
    expect(p.code, p.out + p.err).toBe(ExitCode.OK);
    await setPolicy(3);
    const before = await auditLines();
    const r = await lk(["apply", "grow.json", "--yes"]);
    expect(r.code, r.out + r.err).toBe(ExitCode.PLAN_STALE);
    expect(r.err).toMatch(/^error: the policy changed since the plan \S+ was made .*\(POLICY_CHANGED\) \(PLAN_STALE\)$/m);
    expect(r.err).toContain("hint: nothing was changed; run lanekeeper plan --out grow.json again");
    expect((await managedRunners()).map((x) => x.name)).toEqual([laneId]);
    expect(await auditLines()).toBe(before);
    await setPolicy(1);
  });

  it("an expired saved plan: PLAN_STALE (EXPIRED)", async () => {
    await setPolicy(2);
    expect((await lk(["plan", "--out", "short.json", "--expires-in", "1ms"])).code).toBe(ExitCode.OK);
    await new Promise((r) => setTimeout(r, 20));
    const r = await lk(["apply", "short.json", "--yes", "--json"]);
    expect(r.code).toBe(ExitCode.PLAN_STALE);
    expect(r.json).toMatchObject({ error: { code: "PLAN_STALE", message: expect.stringContaining("(EXPIRED)") } });
    expect((await managedRunners()).map((x) => x.name)).toEqual([laneId]);
    await setPolicy(1);
  });

  it("the lane's GitHub runner gone after plan --out: PLAN_STALE (GUARD_FAILED) naming the action and guard; the record and the host lane are untouched", async () => {
    await setPolicy(0);
    const p = await lk(["plan", "--out", "shrink.json"]);
    expect(p.code, p.out + p.err).toBe(ExitCode.OK);
    const saved = JSON.parse(await readFile(join(w.dir, "shrink.json"), "utf8")) as SavedFile;
    expect(saved.actions.map((a) => `${a.kind}:${a.laneId}`)).toContain(`remove:${laneId}`);
    const record = await w.store.get(laneId);
    const runner = (await managedRunners()).find((x) => x.name === laneId)!;
    await w.github.deleteRunner(SCOPE, runner.id);
    const before = await auditLines();
    const r = await lk(["apply", "shrink.json", "--yes", "--json"]);
    expect(r.code, r.out + r.err).toBe(ExitCode.PLAN_STALE);
    const e = (r.json as { error: { code: string; message: string; hint: string } }).error;
    expect(e.code).toBe("PLAN_STALE");
    expect(e.message).toContain("(GUARD_FAILED)");
    expect(e.message).toContain(`remove:${laneId}: registration of ${laneId} is still runner ${runner.id}`);
    expect(e.hint).toContain("run lanekeeper plan --out shrink.json again");
    expect(await w.store.get(laneId)).toEqual(record);
    expect((await w.agent.manager.list()).map((l) => l.laneId)).toContain(laneId);
    expect(await auditLines()).toBe(before);
  });
});
