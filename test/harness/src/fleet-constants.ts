/** Limits, names and paths of the fleet launcher (see fleet.ts). */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ACTION_KINDS, type ActionKind } from "@lanekeeper/shared";

// ---------------------------------------------------------------------------------------------------------
// Limits of the fleet launcher (kept with it: they only make sense together with the fleet code).

/** Longest wait for an agent's status socket to answer after `run`. A cold node start on a loaded 2-core machine. */
export const FLEET_AGENT_READY_TIMEOUT_MS = 60_000;
/** SIGTERM-to-SIGKILL grace for an agent (it finishes in-flight passes and releases its lock). */
export const FLEET_AGENT_STOP_GRACE_MS = 15_000;
/** Longest a single CLI call (`lanekeeper …`, `lanekeeper-agent …`) may take by default. */
export const FLEET_CLI_TIMEOUT_MS = 300_000;
/** Longest wait for a hand-made runner to show online on the emulator. */
export const FLEET_RUNNER_ONLINE_TIMEOUT_MS = 60_000;

/** Version of the runner distribution the systemd agents get (the runner emulator's). */
export const FLEET_RUNNER_VERSION = "2.336.0";
/** Environment variable the coordinator reads the GitHub token from (policy `github.auth.tokenEnv`). */
export const FLEET_GITHUB_TOKEN_ENV = "LK_GITHUB_TOKEN";
/** Environment variable the coordinator reads its NATS password from (policy `coordinator.natsPasswordEnv`). */
export const FLEET_NATS_PASSWORD_ENV = "LK_NATS_PASSWORD";
/** NATS user of the coordinator. */
export const FLEET_COORDINATOR_NATS_USER = "coordinator";
/** Name of the hand-made runner (unit, container suffix, registration). */
export const HANDMADE_RUNNER_NAME = "handmade";
/** Name of the GitHub-only unmanaged registration (a JIT registration nobody runs). */
export const GITHUB_ONLY_RUNNER_NAME = "ghost-registration";

/**
 * Every intent action an agent can accept (`control.actions`): the protocol's own list, so a new action kind
 * reaches the fleet's default allowlists without an edit here.
 */
export const ALL_AGENT_ACTIONS: readonly ActionKind[] = ACTION_KINDS;

/** The repository checkout the harness runs from. */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
/** The built agent CLI. */
export const AGENT_BIN = join(repoRoot, "packages/agent/bin/lanekeeper-agent.js");
/** The built coordinator CLI. */
export const COORDINATOR_BIN = join(repoRoot, "packages/coordinator/bin/lanekeeper.js");
