// Shared set-up of the agent integration suites: a real GitHub emulator, a fresh agent identity, a real audit
// chain, lane directories under a directory both the host and the systemd sandbox see, and helpers to mint
// registration/remove tokens through the emulator's REST API. Keys are generated at test time.
import { createHash } from "node:crypto";
import { cp, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  AuditLog,
  type AuditRecord,
  Backend,
  generateSigningKey,
  identityLabels,
  LaneMode,
  type LaneSpec,
  type SigningKey,
} from "@lanekeeper/shared";
import { runnerEmulatorDir, type GitHubEmulator } from "@lanekeeper/harness";
import { expect } from "vitest";
import {
  type CommandRunner,
  LaneDirectories,
  LaneManager,
  type LaneRuntime,
  MarkerSigner,
  type HealthPolicy,
} from "../../packages/agent/src/index.js";

export const HOST = "build01";
export const SCOPE = "acme/api";
export const POOL = "linux-x64";
/** The runner emulator reports this version; the systemd runtime copies `<dist>/<version>` per lane. */
export const RUNNER_VERSION = "2.336.0";

/** A fast health policy for tests: immediate first restart, tiny backoff. */
export const FAST_HEALTH: HealthPolicy = { maxRestarts: 2, windowMs: 120_000, backoffBaseMs: 50, backoffMaxMs: 200 };

/** A lane spec for this host. */
export function laneSpec(laneId: string, gh: GitHubEmulator, over: Partial<LaneSpec> = {}): LaneSpec {
  return {
    laneId,
    scope: SCOPE,
    pool: POOL,
    backend: Backend.BACKEND_SYSTEMD,
    mode: LaneMode.LANE_MODE_PERSISTENT,
    labels: [...identityLabels({ laneId, hostId: HOST, pool: POOL }), "linux"],
    runnerGroup: "",
    githubUrl: gh.webUrl(SCOPE),
    runnerVersion: RUNNER_VERSION,
    image: "",
    limits: { cpuMillis: 0, memoryBytes: 0 },
    runnerDownload: undefined,
    ...over,
  };
}

async function tokenCall(gh: GitHubEmulator, kind: "registration-token" | "remove-token"): Promise<Buffer> {
  const res = await fetch(`${gh.apiUrl}/repos/${SCOPE}/actions/runners/${kind}`, {
    method: "POST",
    headers: { authorization: `token ${gh.token}`, accept: "application/vnd.github+json" },
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { token: string };
  return Buffer.from(body.token);
}

/** A fresh registration token for {@link SCOPE}. */
export function registrationToken(gh: GitHubEmulator): Promise<Buffer> {
  return tokenCall(gh, "registration-token");
}

/** A fresh remove token for {@link SCOPE}. */
export function removeToken(gh: GitHubEmulator): Promise<Buffer> {
  return tokenCall(gh, "remove-token");
}

/** Delete a runner registration through the REST API (what an admin clicking "remove" does). */
export async function deleteRegistration(gh: GitHubEmulator, runnerId: number): Promise<void> {
  const res = await fetch(`${gh.apiUrl}/repos/${SCOPE}/actions/runners/${runnerId}`, {
    method: "DELETE",
    headers: { authorization: `token ${gh.token}` },
  });
  expect(res.status).toBe(204);
}

/** The emulator's view of one runner by name. */
export async function runnerNamed(gh: GitHubEmulator, name: string): Promise<{ id: number; status: string; busy: boolean; labels: string[] } | undefined> {
  return (await gh.control.listRunners()).find((r) => r.name === name);
}

/** Copy the runner emulator as runner distribution `<root>/dist/<RUNNER_VERSION>`. */
export async function installRunnerDist(root: string): Promise<string> {
  const dist = join(root, "dist");
  await mkdir(dist, { recursive: true });
  await cp(runnerEmulatorDir, join(dist, RUNNER_VERSION), { recursive: true });
  return dist;
}

/** Audit records collected for assertions (read back from the real chain). */
export async function auditRecords(path: string): Promise<AuditRecord[]> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as AuditRecord);
}

/** sha256 of a file, to prove something was not modified. */
export async function fileHash(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

/** What a suite needs to build a LaneManager. */
export interface AgentParts {
  readonly key: SigningKey;
  readonly signer: MarkerSigner;
  readonly dirs: LaneDirectories;
  readonly stateDir: string;
  readonly auditPath: string;
  readonly audit: AuditLog;
}

/** Identity, lane directories, state dir and audit chain under `root`. */
export async function agentParts(root: string, key: SigningKey = generateSigningKey()): Promise<AgentParts> {
  const signer = new MarkerSigner(HOST, key);
  const laneRoot = join(root, "lanes");
  await mkdir(laneRoot, { recursive: true });
  const stateDir = join(root, "state");
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const auditPath = join(stateDir, "audit.log");
  return { key, signer, dirs: new LaneDirectories(laneRoot, signer), stateDir, auditPath, audit: await AuditLog.open(auditPath, { mode: 0o600 }) };
}

/** A LaneManager over the given runtimes. */
export function laneManager(p: AgentParts, runtimes: Partial<Record<"systemd" | "container", LaneRuntime>>, health: HealthPolicy = FAST_HEALTH): LaneManager {
  return new LaneManager({ hostId: HOST, stateDir: p.stateDir, dirs: p.dirs, runtimes, audit: p.audit, health, auditSource: `agent:${HOST}` });
}

/** Adapts the systemd sandbox's `exec` (nsenter into its namespaces) to the agent's CommandRunner. */
export function sandboxRunner(exec: (cmd: string, args: readonly string[], opts: { timeoutMs: number }) => Promise<{ code: number | null; stdout: string; stderr: string }>): CommandRunner {
  return {
    run: async (argv, opts) => {
      const [cmd = "", ...args] = argv;
      const r = await exec(cmd, args, { timeoutMs: opts.timeoutMs });
      return { code: r.code, signal: null, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

/** Poll `fn` until it returns a truthy value (or throw after `timeoutMs`). Never asserts on time. */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Check that an audit chain holds planned → started → terminal for `action` on `laneId`, in order. */
export function expectAuditTriple(records: readonly AuditRecord[], action: string, laneId: string, terminal: "succeeded" | "failed" | "rejected"): void {
  const phases = records.filter((r) => r.action === action && r.laneId === laneId).map((r) => r.phase);
  const i = phases.lastIndexOf("planned");
  expect(i, `no planned ${action} record for ${laneId}`).toBeGreaterThanOrEqual(0);
  expect(phases.slice(i, i + 3)).toEqual(["planned", "started", terminal]);
}
