// `lanekeeper smoke` (issue 14) on a real fleet: nats-server, the GitHub emulator, a lanekeeper-agent on the
// systemd sandbox. One fleet for every case: a refusal (scope not opted in; host allowlist without the scope)
// changes nothing; a passing run whose dispatched workflow's job runs on the smoke lane, while `plan` leaves the
// lane alone and the real lane beside it is never touched; a lane that never comes online (runners cannot
// connect) is cleaned up with a clear report; SIGINT while the restart drains a running job: the job finishes
// (never killed), the lane is removed, the report says so. Every case ends with nothing of the smoke lane left.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { COORDINATOR_BIN, type Fleet, type RunnerView } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyOk, auditChain, describeCli, e2eFleet, eventually, planJson, waitManagedOnline } from "./e2e-fixture.js";

const REAL = "acme/api";
const SANDBOX = "acme/sandbox";
const CLOSED = "acme/closed";
const OTHER = "acme/other";
const POOL = "linux-x64";
const FIRST_CONTACT = fileURLToPath(new URL("../../docs/first-contact.md", import.meta.url));

/** The `--json` report of `lanekeeper smoke`. */
interface SmokeReportJson {
  ok: boolean;
  runId: string;
  laneId: string;
  label: string;
  interrupted: boolean;
  steps: { name: string; status: string; elapsedMs: number; detail: string; code?: string }[];
  job?: { jobId: number; runId: number; runnerName: string; conclusion: string };
  leftovers: { what: string; command: string }[];
}

let fleet: Fleet;
let realLane: RunnerView;

beforeAll(async () => {
  fleet = await e2eFleet({
    repos: [REAL, SANDBOX, CLOSED, OTHER],
    // acme/closed is not opted in on the coordinator; acme/other is, but the agent's allowlist leaves it out.
    scopes: { [REAL]: { optIn: true }, [SANDBOX]: { optIn: true }, [CLOSED]: { optIn: false }, [OTHER]: { optIn: true } },
    // The actions docs/first-contact.md tells an operator to allow are enough for a smoke run.
    agents: [{ hostId: "build01", runtime: "systemd", capacity: 4, control: { scopes: [REAL, SANDBOX, CLOSED], actions: ["create", "drain", "undrain", "restart", "remove"] } }],
    pools: { [POOL]: { backend: "systemd", labels: ["linux", "x64"] } },
    lanes: [{ scope: REAL, pool: POOL, count: 1, hosts: ["build01"] }],
    handmade: { container: false },
    verifyTimeoutMs: 20_000,
  });
  await applyOk(fleet);
  [realLane] = (await waitManagedOnline(fleet, 1)) as [RunnerView];
});

afterAll(async () => {
  await fleet?.stop();
});

/** `lanekeeper smoke …` as a child process we can signal; resolves with its result when it exits. */
function smoke(args: readonly string[]): { child: ReturnType<typeof spawn>; stderr: () => string; done: Promise<{ code: number | null; stdout: string; stderr: string; report?: SmokeReportJson }> } {
  const child = spawn(process.execPath, [COORDINATOR_BIN, "smoke", ...args], { cwd: fleet.dir, env: { ...process.env, ...fleet.coordinatorEnv }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string; report?: SmokeReportJson }>((resolve) => {
    child.on("close", (code) => {
      let report: SmokeReportJson | undefined;
      try {
        report = JSON.parse(stdout) as SmokeReportJson;
      } catch {
        report = undefined;
      }
      resolve({ code, stdout, stderr, ...(report === undefined ? {} : { report }) });
    });
  });
  return { child, stderr: () => stderr, done };
}

const smokeRunners = async (): Promise<RunnerView[]> => (await fleet.github.control.listRunners()).filter((r) => r.labels.some((l) => l.startsWith("lanekeeper-smoke-")));

/** Nothing of a smoke lane is left: no registration, no unit on the host, no record; the real lane untouched. */
async function expectNothingLeft(laneId: string): Promise<void> {
  expect(await smokeRunners()).toEqual([]);
  const status = await fleet.agent("build01").status();
  expect((status.lanes ?? []).map((l) => l.laneId)).not.toContain(laneId);
  const units = await fleet.agent("build01").sandbox!.systemctl("list-unit-files", "--no-legend", "--no-pager", "lanekeeper-lane-*");
  expect(units.stdout).toContain("lanekeeper-lane-"); // the real lane's unit: the listing works
  expect(units.stdout).not.toContain(laneId);
  const p = await planJson(fleet);
  expect(p.actions.filter((a) => a.kind !== "update-record")).toEqual([]);
  expect(p.warnings.filter((w) => w.laneId === laneId)).toEqual([]);
  const real = (await fleet.github.control.listRunners()).find((r) => r.id === realLane.id);
  expect(real).toMatchObject({ status: "online", labels: realLane.labels });
}

describe("lanekeeper smoke", () => {
  it("refuses to start, changing nothing, when the scope is not opted in on the coordinator or in the agent's allowlist", async () => {
    const before = { runners: await fleet.github.control.listRunners(), audit: await readFile(fleet.auditPath, "utf8") };
    const closed = await fleet.lanekeeper(["smoke", "--scope", `repo:${CLOSED}`, "--host", "build01"]);
    expect(closed.code, describeCli(closed)).toBe(6);
    expect(closed.stderr).toContain("(SMOKE_SCOPE_NOT_OPTED_IN)");
    expect(closed.stderr).toMatch(/hint: .*scopes\."acme\/closed"\.optIn: true/);
    const other = await fleet.lanekeeper(["smoke", "--scope", `repo:${OTHER}`, "--host", "build01", "--json"]);
    expect(other.code, describeCli(other)).toBe(6);
    expect(other.json).toMatchObject({ error: { code: "SMOKE_HOST_NOT_ALLOWED" } });
    expect((other.json as { error: { message: string } }).error.message).toContain(`scope ${OTHER} (control.scopes)`);
    const notEnrolled = await fleet.lanekeeper(["smoke", "--scope", `repo:${SANDBOX}`, "--host", "build99"]);
    expect(notEnrolled.code, describeCli(notEnrolled)).toBe(6);
    expect(notEnrolled.stderr).toContain("(SMOKE_HOST_NOT_OPTED_IN)");
    expect(await fleet.github.control.listRunners()).toEqual(before.runners);
    expect(await readFile(fleet.auditPath, "utf8")).toBe(before.audit);
  });

  it("passes: creates the lane, runs the dispatched workflow's job on it, restarts, removes; plan leaves it alone meanwhile", async () => {
    await fleet.github.control.defineWorkflow(SANDBOX, "smoke.yml", { runsOn: ["${{ inputs.runner_label }}"], durationMs: 2_000, name: "smoke" });
    // The command docs/first-contact.md tells an operator to run, as written there, with the report as JSON and
    // time to run `plan` beside it.
    const docLine = (await readFile(FIRST_CONTACT, "utf8")).split("\n").find((l) => l.startsWith("lanekeeper smoke "));
    const docArgs = (docLine ?? "").trim().split(/\s+/).slice(2);
    expect(docArgs).toEqual(["--scope", `repo:${SANDBOX}`, "--host", "build01", "--workflow", "smoke.yml", "--ref", "main"]);
    const run = smoke([...docArgs, "--linger", "8s", "--json"]);
    // While the run holds the lane, the normal policy's plan has no action on it (not excess, not an orphan).
    const lane = await eventually(async () => (await smokeRunners()).find((r) => r.status === "online"), "the smoke lane online", 120_000, 200);
    const laneId = lane.name;
    const during = await planJson(fleet);
    expect(during.actions.filter((a) => a.laneId === laneId)).toEqual([]);
    expect(during.warnings.find((w) => w.laneId === laneId)?.code).toBe("SMOKE_LANE");
    const r = await run.done;
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const report = r.report!;
    expect(report).toMatchObject({ ok: true, interrupted: false, laneId, leftovers: [] });
    expect(report.steps.map((s) => `${s.name}:${s.status}`)).toEqual(
      ["preflight", "create", "online", "workflow", "restart", "online-again", "remove", "gone", "audit"].map((n) => `${n}:ok`),
    );
    expect(report.steps.every((s) => typeof s.elapsedMs === "number")).toBe(true);
    expect(lane.labels.sort()).toEqual(["lk-managed", `lk-lane-${laneId}`, "lk-host-build01", `lk-pool-${POOL}`, report.label].sort());
    expect(report.job).toMatchObject({ runnerName: laneId, conclusion: "success" });
    const job = await fleet.github.control.getJob(report.job!.jobId);
    expect(job).toMatchObject({ status: "completed", conclusion: "success", runnerName: laneId, labels: [report.label] });
    // Each step on stderr with its timing.
    expect(r.stderr).toContain('"type":"smoke-step"');
    // Every smoke operation is audited planned → started → succeeded, and the chain verifies.
    const records = (await auditChain(fleet.auditPath)).filter((x) => x.laneId === laneId);
    expect(records.filter((x) => x.phase === "succeeded").map((x) => x.action)).toEqual(["create", "restart", "remove"]);
    await expectNothingLeft(laneId);
  });

  it("a lane that never comes online (runners cannot connect) is cleaned up, and the report says where it failed", async () => {
    await fleet.github.control.setFaults({ refuseSessions: true });
    try {
      const r = await smoke(["--scope", `repo:${SANDBOX}`, "--host", "build01", "--json"]).done;
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(7);
      const report = r.report!;
      expect(report).toMatchObject({ ok: false, interrupted: false, leftovers: [] });
      const create = report.steps.find((s) => s.name === "create");
      expect(create).toMatchObject({ status: "failed", code: "VERIFY_ONLINE_TIMEOUT" });
      expect(report.steps.find((s) => s.name === "cleanup")).toMatchObject({ status: "ok" });
      expect(report.steps.find((s) => s.name === "audit")).toMatchObject({ status: "ok" });
      expect(report.steps.map((s) => s.name)).not.toContain("restart");
      await fleet.github.control.clearFaults();
      await expectNothingLeft(report.laneId);
    } finally {
      await fleet.github.control.clearFaults();
    }
  });

  it("SIGINT while the restart drains a running job: the job is not killed, the lane is removed, the report says interrupted", async () => {
    const run = smoke(["--scope", `repo:${SANDBOX}`, "--host", "build01", "--linger", "5s", "--json"]);
    const lane = await eventually(async () => (await smokeRunners()).find((r) => r.status === "online"), "the smoke lane online", 120_000, 200);
    const label = lane.labels.find((l) => l.startsWith("lanekeeper-smoke-"))!;
    const { id } = await fleet.github.control.createJob(SANDBOX, { labels: [label], durationMs: 12_000, name: "long" });
    await eventually(async () => (await fleet.github.control.getJob(id)).status === "in_progress", "the job running on the smoke lane", 60_000, 200);
    await eventually(() => Promise.resolve(run.stderr().includes('"type":"drain-wait"')), "the restart waiting for the job", 60_000, 200);
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(7);
    const report = r.report!;
    expect(report).toMatchObject({ ok: false, interrupted: true, leftovers: [] });
    expect(report.steps.find((s) => s.name === "restart")).toMatchObject({ status: "failed", code: "SMOKE_INTERRUPTED" });
    expect(report.steps.find((s) => s.name === "cleanup")).toMatchObject({ status: "ok" });
    // The job ran to its end on the smoke lane: drained around, never killed.
    expect(await fleet.github.control.getJob(id)).toMatchObject({ status: "completed", conclusion: "success", runnerName: report.laneId });
    await expectNothingLeft(report.laneId);
  });
});
