/**
 * The manifest each fleet directory carries, so a later run can clean up after a test process that died without
 * `stop()`.
 */
import { readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pidExists, runCommand } from "./process-util.js";
import { removeLaneContainers } from "./fleet-agent.js";

/** In each fleet directory: what a later run needs to clean up after a test process that died without `stop()`. */
const MANIFEST_FILE = "fleet-manifest.json";

/** Contents of {@link MANIFEST_FILE}. */
export interface FleetManifest {
  /** PID of the process that started the fleet. */
  ownerPid: number;
  /** Container hosts and their lane roots (lane containers are found by host label and lane directory). */
  containerHosts: { hostId: string; laneRoot: string }[];
  /** Containers the fleet created itself (hand-made runners). */
  containers: string[];
}

let manifestWrites: Promise<unknown> = Promise.resolve();

/** Writes the manifest; writes are serialized (agents are set up in parallel), the last one wins. */
export function writeManifest(dir: string, m: FleetManifest): Promise<void> {
  const text = `${JSON.stringify(m)}\n`;
  const run = manifestWrites.then(() => writeFile(join(dir, MANIFEST_FILE), text));
  manifestWrites = run.catch(() => undefined);
  return run;
}

/**
 * Removes what fleets of dead test processes left behind: processes die with their owner (setpriv
 * --pdeathsig, the sandboxes' PID namespaces), but podman containers and directories do not. Fleets of live
 * processes are left alone.
 */
export async function sweepStaleFleets(baseDir: string): Promise<void> {
  for (const name of await readdir(baseDir).catch(() => [] as string[])) {
    if (!name.startsWith("lk-fleet-")) continue;
    const dir = join(baseDir, name);
    let m: FleetManifest;
    try {
      m = JSON.parse(await readFile(join(dir, MANIFEST_FILE), "utf8")) as FleetManifest;
    } catch {
      continue; // No manifest (yet): not ours to judge.
    }
    if (!Number.isInteger(m.ownerPid) || m.ownerPid <= 0 || pidExists(m.ownerPid)) continue;
    for (const h of m.containerHosts ?? []) await removeLaneContainers(h.hostId, h.laneRoot).catch(() => undefined);
    for (const c of m.containers ?? []) await runCommand("podman", ["rm", "-f", "-t", "0", c], { timeoutMs: 60_000 }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
