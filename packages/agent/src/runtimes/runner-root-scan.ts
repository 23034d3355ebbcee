/**
 * Hand-made runners in plain directories: a `.runner` file under one of the configured `runnerRoots` (searched a
 * few levels deep, never following symlinks, never below the agent's own lane root). Reported as unmanaged,
 * never touched.
 */
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import type { UnmanagedRunner } from "@lanekeeper/shared";
import { readSmallFile } from "../atomic-file.js";
import { MAX_RUNNER_FILE_BYTES, RUNNER_ROOT_SCAN_DEPTH } from "../limits.js";
import { parseRunnerSettings } from "../lanes/runner-settings.js";

/** Every runner directory (holding `.runner`) under `roots`, except inside `exclude`. */
export async function scanRunnerRoots(roots: readonly string[], exclude: readonly string[]): Promise<UnmanagedRunner[]> {
  const out: UnmanagedRunner[] = [];
  const inside = (p: string): boolean => exclude.some((e) => p === e || !relative(e, p).startsWith(".."));
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (inside(dir)) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    if (entries.some((e) => e.name === ".runner" && e.isFile())) {
      const buf = await readSmallFile(join(dir, ".runner"), MAX_RUNNER_FILE_BYTES).catch(() => undefined);
      const s = buf ? parseRunnerSettings(buf.toString("utf8")) : undefined;
      out.push({ kind: "runner-dir", name: dir, runnerName: s?.agentName ?? "", githubUrl: s?.gitHubUrl ?? "", reason: "NO_MARKER", state: "" });
      return;
    }
    if (depth >= RUNNER_ROOT_SCAN_DEPTH) return;
    for (const e of entries) {
      // Dirent.isDirectory() is false for symlinks: the scan never follows them.
      if (e.isDirectory() && !e.name.startsWith(".") && e.name !== "_work" && e.name !== "node_modules") await walk(join(dir, e.name), depth + 1);
    }
  };
  for (const root of roots) await walk(root, 0);
  return out;
}
