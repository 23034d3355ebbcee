/**
 * The agent's build: version (in inventories, the enrollment bundle and the log) and git commit (for
 * `--version`), through shared's `buildInfo`: baked in by the release bundle, else read from this checkout.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildInfo, buildVersion, type BuildInfo, type CheckoutProbe } from "@lanekeeper/shared";

/** This package's checkout: its directory (dist/.. or src/..), the file reader and `git` runner. */
const checkout: CheckoutProbe = {
  packageDir: fileURLToPath(new URL("..", import.meta.url)),
  readFile: (path) => readFileSync(path, "utf8"),
  run: (command, args, options) => spawnSync(command, [...args], { ...options, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }),
};

/** `@lanekeeper/agent`'s version (no process is started for it). */
export const AGENT_VERSION: string = buildVersion(checkout);

/** Version and commit of the running agent; runs `git` in a checkout, so call it only for `--version`. */
export function agentBuildInfo(): BuildInfo {
  return buildInfo(checkout);
}
