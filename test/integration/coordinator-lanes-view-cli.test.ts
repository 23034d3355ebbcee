// The built `lanekeeper` run as child processes against the real world (GitHub emulator, nats-server with
// lanekeeper's permissions, a real agent running a lane in a real systemd): `lanes list` with its filters,
// `lanes show` (record, GitHub, host, recovery note, audit) including an unknown lane, and `status --watch`
// (rounds until SIGINT, exit 0; a round that fails while NATS is down is shown and the watch goes on).
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "./agent-fixture.js";
import { HOST, POOL, SCOPE, startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

const BIN = fileURLToPath(new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url));

let w: ApplyWorld;
let policyPath = "";
let laneId = "";

function env(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANEKEEPER_POLICY: policyPath,
    LK_TEST_GITHUB_TOKEN: w.gh.token,
    LK_TEST_NATS_PASSWORD: w.coordinatorUser.password,
    LANEKEEPER_OPERATOR: "carol",
  };
}

function start(args: string[]): { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: w.dir, env: env(), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

async function lk(args: string[]): Promise<{ code: number | null; out: string; err: string; json: unknown }> {
  const p = start(args);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 90_000);
  const code = await p.exit;
  clearTimeout(timer);
  let json: unknown;
  try {
    json = JSON.parse(p.out());
  } catch {
    json = undefined;
  }
  return { code, out: p.out(), err: p.err(), json };
}

interface ListedLane {
  laneId: string;
  hostId: string;
  scope: string;
  pool: string;
  record: string;
  github: string;
  host: string;
  class: string;
  attention: string | null;
}

beforeAll(async () => {
  w = await startApplyWorld();
  policyPath = join(w.dir, "lanekeeper.yaml");
  await writeFile(policyPath, w.policyText(1, { auditFile: join(w.dir, "cli-audit.jsonl"), natsPasswordEnv: "LK_TEST_NATS_PASSWORD" }));
  const { report } = await w.apply(1);
  expect(report.ok).toBe(true);
  laneId = report.outcomes[0]!.laneId;
  await eventually(async () => (await w.gh.control.listRunners()).find((r) => r.name === laneId)?.status === "online", "lane online");
});

afterAll(async () => {
  await w?.close();
});

describe("lanekeeper lanes list", () => {
  it("lists the lane with its record, GitHub and host state", async () => {
    const r = await lk(["lanes", "list"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^LANE\s+HOST\s+SCOPE\s+POOL\s+RECORD\s+GITHUB\s+ON HOST\s+JOB\s+CLASS/);
    expect(r.out).toMatch(new RegExp(`${laneId}\\s+${HOST}\\s+${SCOPE}\\s+${POOL}\\s+active\\s+online\\s+running\\s+managed`));
  });

  it("filters by scope, pool, host and state (--json); a filter nothing matches gives an empty list", async () => {
    const all = await lk(["lanes", "list", "--json", "--scope", SCOPE, "--pool", POOL, "--host", HOST, "--state", "active"]);
    expect(all.code, all.err).toBe(0);
    const body = all.json as { filters: unknown; lanes: ListedLane[] };
    expect(body.filters).toEqual({ scope: SCOPE, pool: POOL, host: HOST, state: "active" });
    expect(body.lanes.map((l) => [l.laneId, l.record, l.github, l.host])).toEqual([[laneId, "active", "online", "running"]]);
    for (const f of [
      ["--scope", "acme/other"],
      ["--pool", "gpu"],
      ["--host", "build99"],
      ["--state", "draining"],
    ]) {
      const r = await lk(["lanes", "list", "--json", "--inventory-wait", "1s", ...f]);
      expect(r.code, r.err).toBe(0);
      expect((r.json as { lanes: ListedLane[] }).lanes, f.join(" ")).toEqual([]);
    }
    const none = await lk(["lanes", "list", "--pool", "gpu"]);
    expect(none.out).toBe("No lane matches the filters.\n");
  });

  it("--state outside the known values is a usage error (exit 2) listing them", async () => {
    const r = await lk(["lanes", "list", "--state", "sleeping"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--state.*must be one of creating, active, draining, removing, needs-attention, orphaned, none, managed/);
  });
});

describe("lanekeeper lanes show", () => {
  it("shows the record, GitHub's runner, the host's lane and the lane's audit records (--json)", async () => {
    const r = await lk(["lanes", "show", laneId, "--json"]);
    expect(r.code, r.err).toBe(0);
    const d = r.json as {
      laneId: string;
      record: { state: string; runnerId: number; hostId: string };
      github: { runner: { id: number; status: string; labels: { name: string }[] } };
      host: { hostId: string; inventoryAgeMs: number; lane: { state: string; jobRunning: boolean; runtimeName: string } };
      recoveryNote: string | null;
      audit: { action: string; phase: string; laneId: string; source: string }[];
    };
    expect(d.laneId).toBe(laneId);
    expect(d.record).toMatchObject({ state: "active", hostId: HOST });
    expect(d.github.runner.id).toBe(d.record.runnerId);
    expect(d.github.runner.status).toBe("online");
    expect(d.github.runner.labels.map((l) => l.name)).toContain(`lk-lane-${laneId}`);
    expect(d.host).toMatchObject({ hostId: HOST, lane: { state: "running", jobRunning: false, runtimeName: `lanekeeper-lane-${laneId}.service` } });
    expect(d.recoveryNote).toBeNull();
    expect(d.audit.length).toBeGreaterThan(0);
    expect(d.audit.every((a) => a.laneId === laneId)).toBe(true);
    expect(d.audit.map((a) => `${a.action}:${a.phase}`)).toContain("create:succeeded");
  });

  it("prints the same for humans, section by section", async () => {
    const r = await lk(["lanes", "show", laneId, "--audit", "3"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`^Lane ${laneId}: ${SCOPE} / ${POOL} on ${HOST}; managed`));
    for (const section of ["Coordinator record", `GitHub (${SCOPE})`, `Host ${HOST} (inventory`, "Recent audit (3, oldest first)"]) expect(r.out).toContain(section);
    expect(r.out).toMatch(/state\s+active/);
    expect(r.out).toMatch(/status\s+online, idle/);
    expect(r.out).toMatch(/job\s+none/);
  });

  it("an unknown lane is LANE_NOT_FOUND (exit 6) with a hint naming lanes list", async () => {
    const r = await lk(["lanes", "show", "lane-that-never-was", "--inventory-wait", "1s"]);
    expect(r.code).toBe(6);
    expect(r.err).toMatch(/^error: no lane lane-that-never-was is known[^\n]*\(LANE_NOT_FOUND\)$/m);
    expect(r.err).toMatch(/^hint: `lanekeeper lanes list` lists the lanes/m);
    const j = await lk(["lanes", "show", "lane-that-never-was", "--inventory-wait", "1s", "--json"]);
    expect(j.code).toBe(6);
    expect(j.json).toMatchObject({ error: { code: "LANE_NOT_FOUND", exitCode: 6 } });
  });

  it("a drain that hits its deadline: list --state needs-attention finds the lane and show prints its recovery note", async () => {
    const job = await w.gh.control.createJob(SCOPE, { labels: ["linux"], durationMs: 120_000 });
    expect((await w.gh.control.waitForJob(job.id, "in_progress", 30_000)).status).toBe("in_progress");
    const drain = await lk(["lanes", "drain", laneId, "--deadline", "2s", "--quiet"]);
    expect(drain.code, drain.out + drain.err).toBe(8);
    const list = await lk(["lanes", "list", "--state", "needs-attention", "--json"]);
    expect((list.json as { lanes: ListedLane[] }).lanes.map((l) => l.laneId)).toEqual([laneId]);
    const r = await lk(["lanes", "show", laneId, "--json"]);
    expect(r.code, r.err).toBe(0);
    const d = r.json as { record: { state: string; attention: { code: string } }; recoveryNote: string; audit: { action: string; phase: string }[] };
    expect(d.record.state).toBe("needs-attention");
    expect(d.recoveryNote).toContain(`lanekeeper lanes release ${laneId}`);
    expect(d.audit.map((a) => `${a.action}:${a.phase}`)).toContain("drain:failed");
    const human = await lk(["lanes", "show", laneId]);
    expect(human.out).toContain(`Recovery note\n  ${d.recoveryNote}\n`);
    // Back in service for the next tests; the job keeps running.
    expect((await lk(["lanes", "release", laneId])).code).toBe(0);
    expect((await w.gh.control.getJob(job.id)).status).toBe("in_progress");
  });
});

describe("lanekeeper status --watch", () => {
  it("re-renders every --interval until SIGINT, then exits 0 at once", async () => {
    const p = start(["status", "--watch", "--interval", "1s"]);
    try {
      await eventually(() => Promise.resolve((p.out().match(/^Every 1s: lanekeeper status, round \d+ at /gm) ?? []).length >= 2), "two rounds", 60_000);
      expect(p.out()).toMatch(new RegExp(`${laneId}\\s+${HOST}\\s+${SCOPE}/${POOL}\\s+active`));
      p.child.kill("SIGINT");
      const stopped = Date.now();
      expect(await p.exit, p.err()).toBe(0);
      expect(Date.now() - stopped).toBeLessThan(5_000);
    } finally {
      p.child.kill("SIGKILL");
    }
  });

  it("--json prints one JSON document per line per round", async () => {
    const p = start(["status", "--watch", "--interval", "1s", "--json"]);
    try {
      await eventually(() => Promise.resolve(p.out().split("\n").filter((l) => l !== "").length >= 2), "two JSON rounds", 60_000);
      p.child.kill("SIGINT");
      expect(await p.exit).toBe(0);
      const rounds = p.out().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { lanes: { laneId: string }[] });
      expect(rounds.length).toBeGreaterThanOrEqual(2);
      for (const r of rounds) expect(r.lanes.map((l) => l.laneId)).toContain(laneId);
    } finally {
      p.child.kill("SIGKILL");
    }
  });

  it("a round that fails while NATS is down is shown with its error, and the watch goes on after NATS is back", async () => {
    const p = start(["status", "--watch", "--interval", "1s", "--timeout", "2s"]);
    try {
      await eventually(() => Promise.resolve(/round 1 at/.test(p.out())), "first round", 60_000);
      await w.nats.halt();
      try {
        await eventually(() => Promise.resolve(/\((COMMAND_TIMEOUT|NATS_UNAVAILABLE|LANE_STORE_UNAVAILABLE)\)$/m.test(p.err())), "a failed round", 30_000);
        expect(p.err()).toContain("still watching: next round in 1s");
      } finally {
        await w.nats.resume();
      }
      const failedAt = p.out().length;
      await eventually(() => Promise.resolve(new RegExp(`${laneId}\\s+${HOST}`).test(p.out().slice(failedAt))), "a good round after NATS is back", 60_000);
      expect(p.child.exitCode).toBeNull();
      p.child.kill("SIGINT");
      expect(await p.exit).toBe(0);
    } finally {
      p.child.kill("SIGKILL");
    }
  });
});
