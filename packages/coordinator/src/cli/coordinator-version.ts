/**
 * The coordinator's build (version and git commit) for `lanekeeper --version` and `lanekeeper version`, through
 * shared's `buildInfo`: baked in by the release bundle, else read from this checkout.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildInfo, type BuildInfo, type CheckoutProbe } from "@lanekeeper/shared";

/** This package's checkout: its directory (two levels above dist/cli or src/cli), file reader and `git` runner. */
const checkout: CheckoutProbe = {
  packageDir: fileURLToPath(new URL("../..", import.meta.url)),
  readFile: (path) => readFileSync(path, "utf8"),
  run: (command, args, options) => spawnSync(command, [...args], { ...options, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }),
};

/** Version and commit of the running `lanekeeper`; runs `git` in a checkout, so call it only when asked. */
export function coordinatorBuildInfo(): BuildInfo {
  return buildInfo(checkout);
}
