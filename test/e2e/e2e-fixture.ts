// Shared helpers of the end-to-end suites. Every suite starts a real fleet with `startFleet` (nats-server with
// per-host users, the GitHub emulator, real `lanekeeper-agent` processes in systemd sandboxes or with podman)
// and drives it only through the shipped command lines: `lanekeeper …` for the coordinator, `lanekeeper-agent …`
// on the hosts. Assertions read GitHub's truth from the emulator's control API, the hosts' truth from the
// agents' status sockets, unit directories and podman, and the audit chains from their files.
import { readFile, readdir } from "node:fs/promises";
import { expect } from "vitest";
import { type AuditRecord, verifyAuditChain } from "@lanekeeper/shared";
import { runCommand, startFleet, type CliResult, type Fleet, type FleetOptions, type RunnerView } from "@lanekeeper/harness";

/** Options every e2e fleet gets unless a suite overrides them: short drains, quiet unless LK_E2E_VERBOSE is set. */
export function e2eFleet(opts: FleetOptions = {}): Promise<Fleet> {
  const verbose = process.env.LK_E2E_VERBOSE !== undefined;
  return startFleet({
    drain: { settleMs: 1000, pollMs: 300, deadlineMs: 120_000 },
    resultTimeoutMs: 30_000,
    ...(verbose ? { log: (l: string) => process.stderr.write(`[fleet] ${l}\n`) } : {}),
    ...opts,
  });
}

/** One action's outcome in `lanekeeper apply --json` / `lanekeeper lanes … --json` (the coordinator's ApplyReport). */
export interface OutcomeJson {
  actionId: string;
  kind: string;
  laneId: string;
  hostId: string;
  scope: string;
  operationId: string;
  status: "succeeded" | "failed" | "needs-attention" | "skipped" | "dry-run";
  stepsDone: string[];
  failedStep?: string;
  code?: string;
  message?: string;
  safeState?: "untouched" | "drained" | "stopped" | "created-unverified";
  recovery?: string;
  intentIds: string[];
  elapsedMs: number;
}

/** `lanekeeper apply --json` output: the report, and the plan it carried out. */
export interface ApplyReportJson {
  planId: string;
  dryRun: boolean;
  ok: boolean;
  outcomes: OutcomeJson[];
  plan?: PlanJson;
}

/** One planned action in `lanekeeper plan --json`. */
export interface PlanActionJson {
  id: string;
  kind: string;
  laneId: string;
  hostId: string;
  scope: string;
  pool: string;
  reason: { code: string; message: string };
}

/** `lanekeeper plan --json` output (the parts the suites read). */
export interface PlanJson {
  planId: string;
  partial: boolean;
  actions: PlanActionJson[];
  warnings: { code: string; message: string; hostId?: string; laneId?: string }[];
  classification: {
    lanes: Record<string, number>;
    unmanaged: { scope: string; runnerId: number; name: string }[];
    foreign: { scope: string; runnerId: number; name: string; reason: string }[];
    hostUnmanaged: { hostId: string; kind: string; name: string; reason: string }[];
  };
}

/** Fails with the command's output when it is not what the suite expected. */
function describeCli(r: CliResult): string {
  return `exit ${r.code}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-4000)}`;
}

/** `lanekeeper plan --json`, expected to succeed. */
export async function planJson(fleet: Fleet, args: readonly string[] = []): Promise<PlanJson> {
  const r = await fleet.lanekeeper(["plan", "--json", ...args]);
  expect(r.code, describeCli(r)).toBe(0);
  expect(r.json, describeCli(r)).toBeTypeOf("object");
  return r.json as PlanJson;
}

/** `lanekeeper apply --yes --json [args]`; returns the CLI result and the parsed report (if any). */
export async function apply(fleet: Fleet, args: readonly string[] = []): Promise<{ cli: CliResult; report: ApplyReportJson | undefined }> {
  const cli = await fleet.lanekeeper(["apply", "--yes", "--json", ...args]);
  const report = isReport(cli.json) ? cli.json : undefined;
  return { cli, report };
}

/**
 * What `apply` would do now: `apply --dry-run --json` (it reads the agents' inventories, as apply does), without
 * `update-record` bookkeeping. Used to decide whether a fleet has converged.
 */
export async function pendingActions(fleet: Fleet): Promise<OutcomeJson[]> {
  const { cli, report } = await apply(fleet, ["--dry-run"]);
  expect(cli.code, describeCli(cli)).toBe(0);
  expect(report, describeCli(cli)).toBeDefined();
  return report!.outcomes.filter((o) => o.kind !== "update-record");
}

/** `apply` that must succeed with every action succeeded. */
export async function applyOk(fleet: Fleet, args: readonly string[] = []): Promise<ApplyReportJson> {
  const { cli, report } = await apply(fleet, args);
  expect(cli.code, describeCli(cli)).toBe(0);
  expect(report, describeCli(cli)).toBeDefined();
  const bad = report!.outcomes.filter((o) => o.status !== "succeeded");
  expect(bad, describeCli(cli)).toEqual([]);
  return report!;
}

/** `lanekeeper lanes <op> <lane> --json [args]`. */
export async function laneCommand(
  fleet: Fleet,
  op: "drain" | "restart" | "remove" | "hold" | "release",
  laneId: string,
  args: readonly string[] = [],
): Promise<{ cli: CliResult; report: ApplyReportJson | undefined }> {
  const cli = await fleet.lanekeeper(["lanes", op, laneId, "--json", ...args]);
  return { cli, report: isReport(cli.json) ? cli.json : undefined };
}

/** A lane command that must succeed. */
export async function laneCommandOk(fleet: Fleet, op: "drain" | "restart" | "remove" | "hold" | "release", laneId: string, args: readonly string[] = []): Promise<ApplyReportJson> {
  const { cli, report } = await laneCommand(fleet, op, laneId, args);
  expect(cli.code, describeCli(cli)).toBe(0);
  expect(report?.ok, describeCli(cli)).toBe(true);
  return report!;
}

function isReport(v: unknown): v is ApplyReportJson {
  return typeof v === "object" && v !== null && Array.isArray((v as { outcomes?: unknown }).outcomes);
}

export { describeCli };

/** Runners carrying lanekeeper's managed label, as GitHub (the emulator, no busy lag) sees them. */
export async function managedRunners(fleet: Fleet): Promise<RunnerView[]> {
  // A draining lane carries only lk-lane-<id> and lk-draining (nothing a workflow can target), so a lane is
  // recognised by its unique lane label.
  return (await fleet.github.control.listRunners()).filter((r) => r.labels.some((l) => l.startsWith("lk-lane-")));
}

/** The canonical label set of a lane (DESIGN.md section 6), plus its pool's capability labels. */
export function canonicalLabels(laneId: string, hostId: string, pool: string, poolLabels: readonly string[]): string[] {
  return ["lk-managed", `lk-lane-${laneId}`, `lk-host-${hostId}`, `lk-pool-${pool}`, ...poolLabels].sort();
}

/** Host and pool of a managed runner, from its identity labels. */
export function identityOf(r: RunnerView): { laneId: string; hostId: string; pool: string } {
  const pick = (prefix: string): string => r.labels.find((l) => l.startsWith(prefix))?.slice(prefix.length) ?? "";
  return { laneId: pick("lk-lane-"), hostId: pick("lk-host-"), pool: pick("lk-pool-") };
}

/** Polls until `probe` returns a truthy value; throws with `what` after `timeoutMs`. Never asserts on time. */
export async function eventually<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 120_000, stepMs = 500): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Waits until exactly `n` managed runners are online and not draining; returns them. */
export function waitManagedOnline(fleet: Fleet, n: number, timeoutMs = 180_000): Promise<RunnerView[]> {
  return eventually(
    async () => {
      const m = (await managedRunners(fleet)).filter((r) => r.status === "online" && !r.labels.includes("lk-draining"));
      return m.length === n ? m : undefined;
    },
    `${n} managed runners online`,
    timeoutMs,
  );
}

/** Every record of an audit chain file, after checking that the chain verifies. */
export async function auditChain(path: string): Promise<AuditRecord[]> {
  const text = await readFile(path, "utf8").catch(() => "");
  const v = verifyAuditChain(text);
  expect(v.ok, JSON.stringify(v)).toBe(true);
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as AuditRecord);
}

/**
 * Invariant 5: every operation that `started` has a `planned` record before it and exactly one terminal record
 * (`succeeded`, `failed`, `rejected`) after it. Returns the operations by id.
 */
export function expectCompleteOperations(records: readonly AuditRecord[]): Map<string, AuditRecord[]> {
  const ops = new Map<string, AuditRecord[]>();
  for (const r of records) {
    if (r.operationId === undefined) continue;
    const list = ops.get(r.operationId) ?? [];
    list.push(r);
    ops.set(r.operationId, list);
  }
  for (const [id, list] of ops) {
    const phases = list.map((r) => r.phase);
    if (!phases.includes("started")) continue;
    const planned = phases.indexOf("planned");
    const started = phases.indexOf("started");
    const terminals = phases.filter((p) => p === "succeeded" || p === "failed" || p === "rejected");
    expect(planned, `operation ${id}: ${phases.join(",")}`).toBeGreaterThanOrEqual(0);
    expect(planned, `operation ${id}: ${phases.join(",")}`).toBeLessThan(started);
    expect(terminals.length, `operation ${id}: ${phases.join(",")}`).toBeGreaterThanOrEqual(1);
    const lastTerminal = Math.max(...["succeeded", "failed", "rejected"].map((p) => phases.lastIndexOf(p as AuditRecord["phase"])));
    expect(lastTerminal, `operation ${id}: ${phases.join(",")}`).toBeGreaterThan(started);
  }
  return ops;
}

/** Lane unit files in a systemd agent's unit directory. */
export async function laneUnits(fleet: Fleet, hostId: string): Promise<string[]> {
  const sd = fleet.agent(hostId).sandbox;
  if (!sd) return [];
  return (await readdir(sd.unitDir)).filter((f) => f.startsWith("lanekeeper-lane-") && f.endsWith(".service")).sort();
}

/** Lane containers of a container agent (label dev.lanekeeper.host=<hostId>), by name. */
export async function laneContainers(hostId: string): Promise<string[]> {
  const r = await runCommand("podman", ["ps", "-a", "--filter", `label=dev.lanekeeper.host=${hostId}`, "--format", "{{.Names}}"], { timeoutMs: 60_000 });
  return r.stdout
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s.startsWith("lanekeeper-lane-"))
    .sort();
}

/** Lane directories under an agent's lane root. */
export async function laneDirs(fleet: Fleet, hostId: string): Promise<string[]> {
  return (await readdir(fleet.agent(hostId).laneRoot).catch(() => [] as string[])).sort();
}

/** Jobs by id, from the emulator. */
export async function jobsById(fleet: Fleet, ids: readonly number[]): Promise<Awaited<ReturnType<Fleet["github"]["control"]["listJobs"]>>> {
  return (await fleet.github.control.listJobs()).filter((j) => ids.includes(j.id));
}

/** Invariant 2: none of these jobs was cancelled or lost. Waits until they completed. */
export async function expectJobsSucceeded(fleet: Fleet, ids: readonly number[], timeoutMs = 180_000): Promise<void> {
  const jobs = await eventually(
    async () => {
      const js = await jobsById(fleet, ids);
      return js.length === ids.length && js.every((j) => j.status === "completed") ? js : undefined;
    },
    `jobs ${ids.join(",")} to complete`,
    timeoutMs,
  );
  expect(jobs.map((j) => ({ id: j.id, conclusion: j.conclusion }))).toEqual(ids.map((id) => ({ id, conclusion: "success" })));
}

/** Invariant 1: the fleet's hand-made unit, container and registrations are exactly as they were. */
export async function expectUnmanagedUntouched(fleet: Fleet): Promise<void> {
  expect(await fleet.handmade.verifyUntouched()).toEqual([]);
}

/**
 * Does what the recovery notes say, as an operator would: for every lane whose note (on its host, from
 * `lanekeeper-agent status`, or on the coordinator's record, from `lanekeeper status`) names a
 * `lanekeeper lanes <restart|remove|release> <lane>` command, runs the first one named. Returns the commands run.
 */
export async function followRecoveryNotes(fleet: Fleet): Promise<string[]> {
  const notes = new Map<string, string>();
  for (const a of fleet.agents) {
    if (!a.running) continue;
    const st = await a.status().catch(() => undefined);
    for (const l of st?.lanes ?? []) {
      const note = (l as { recoveryNote?: string }).recoveryNote;
      if (note) notes.set(l.laneId, note);
    }
  }
  const coord = await fleet.lanekeeper(["status", "--json"]);
  for (const l of ((coord.json as { lanes?: { laneId: string; attention?: string }[] } | undefined)?.lanes ?? [])) {
    if (l.attention && !notes.has(l.laneId)) notes.set(l.laneId, l.attention);
  }
  const ran: string[] = [];
  for (const [laneId, note] of notes) {
    const m = note.match(new RegExp(`lanekeeper lanes (restart|remove|release) ${laneId}\\b`));
    if (!m) continue;
    const op = m[1] as "restart" | "remove" | "release";
    const r = await laneCommand(fleet, op, laneId);
    ran.push(`lanes ${op} ${laneId} → exit ${r.cli.code}`);
  }
  return ran;
}

/** A readable dump of the fleet's state, for failure messages. */
export async function fleetState(fleet: Fleet): Promise<string> {
  const lines: string[] = [];
  for (const r of await fleet.github.control.listRunners()) {
    lines.push(`github ${r.name} ${r.status}${r.busy ? " busy" : ""} [${r.labels.join(",")}]`);
  }
  for (const a of fleet.agents) {
    const st = await a.status().catch((e: unknown) => ({ error: e instanceof Error ? e.message : String(e) }));
    lines.push(`host ${a.hostId}: ${JSON.stringify("lanes" in st ? st.lanes : st)}`);
  }
  const status = await fleet.lanekeeper(["status"]);
  lines.push(status.stdout.trim());
  return lines.join("\n");
}
