/** The agent's version, from its package.json (read once). */
import { readFileSync } from "node:fs";

// Defined by the release bundles (scripts/dist-bundle.mjs), where no package.json sits beside the code.
declare const __LANEKEEPER_VERSION__: string | undefined;

function readVersion(): string {
  if (typeof __LANEKEEPER_VERSION__ === "string") return __LANEKEEPER_VERSION__;
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/** `@lanekeeper/agent`'s version. */
export const AGENT_VERSION: string = readVersion();
