// Shared set-up of the agent crash suites (agent-crash-recovery, agent-upgrade-crash): an agent whose lane manager
// runs in its own process inside the systemd sandbox (agent-crash-driver.mjs), told by a params file what to build,
// and a way to run one operation through it, optionally SIGKILLing itself at a journaled step.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { signingKeyToPem } from "@lanekeeper/shared";
import type { GitHubEmulator, SystemdSandbox } from "@lanekeeper/harness";
import { agentParts, FAST_HEALTH, HOST, laneSpec, type AgentParts } from "./agent-fixture.js";

const DRIVER = new URL("./agent-crash-driver.mjs", import.meta.url).pathname;

/** An agent's state on disk and the params file the driver reads. */
export interface CrashAgent {
  readonly parts: AgentParts;
  readonly paramsPath: string;
}

/** How one driver run ended, with its output. */
export interface DriveResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly out: string;
}

/**
 * A fresh agent under `sd.root/<name>` with a lane spec for each of `laneIds`, its runners installed from `dist`;
 * `extra` goes into the params file as it is (e.g. `upgradeTo`).
 */
export async function crashAgent(sd: SystemdSandbox, gh: GitHubEmulator, dist: string, name: string, laneIds: readonly string[], extra: Record<string, unknown> = {}): Promise<CrashAgent> {
  const root = join(sd.root, name);
  const parts = await agentParts(root);
  await parts.audit.close();
  const keyFile = join(root, "identity.key");
  await writeFile(keyFile, signingKeyToPem(parts.key), { mode: 0o600 });
  const paramsPath = join(root, "params.json");
  const specs = Object.fromEntries(laneIds.map((id) => [id, laneSpec(id, gh)]));
  await writeFile(
    paramsPath,
    JSON.stringify({ hostId: HOST, backend: "systemd", keyFile, laneRoot: parts.dirs.root, stateDir: parts.stateDir, auditPath: parts.auditPath, unitDir: sd.unitDir, distPath: dist, health: FAST_HEALTH, specs, ...extra }),
  );
  return { parts, paramsPath };
}

/** Run `op` on `laneId` in the driver inside the sandbox (`secret` on its stdin); with `crashAt`, it kills itself there. */
export function driveAgent(sd: SystemdSandbox, a: CrashAgent, op: string, laneId: string, secret?: Buffer, crashAt?: string): Promise<DriveResult> {
  const child = sd.spawn("node", [DRIVER, a.paramsPath, op, laneId], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...(crashAt ? { LANEKEEPER_TEST_CRASH_AT: crashAt } : {}) },
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  child.stdin?.end(secret ?? "");
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal, out })));
}
