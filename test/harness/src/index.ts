export {};
export { LauncherError, type LauncherErrorCode } from "./launcher-error.js";
export * as launcherLimits from "./launcher-limits.js";
export { startNatsServer, type NatsServerHandle, type NatsServerOptions, type NatsUsers } from "./nats-server.js";
export { startNatsCluster, type NatsClusterHandle, type NatsClusterOptions } from "./nats-cluster.js";
export {
  renderNatsConfig, hostSubjects, AGENTS_ACCOUNT, COORDINATOR_ACCOUNT,
  type NatsAgentUser, type NatsCoordinatorUser, type NatsConfigSpec,
} from "./nats-permissions.js";
export {
  runCommand, waitUntil, waitForExit, terminate, pidExists, makeTempDir, readTail,
  type CommandResult, type RunCommandOptions, type WaitUntilOptions, type ExitStatus,
} from "./process-util.js";
export {
  runnerEmulatorDir, runnerImageBuildScript, buildRunnerImage, parseBuildOutput, RUNNER_IMAGE_BUILD_TIMEOUT_MS,
  type RunnerImage, type BuildRunnerImageOptions,
} from "./runner-image.js";
export { startGitHubEmulator, type GitHubEmulator } from "./github-emulator/server.js";
export type { GitHubEmulatorOptions, ExtraToken, TokenAccess, Clock as GitHubEmulatorClock } from "./github-emulator/options.js";
export { GitHubEmulatorError, type GitHubEmulatorErrorCode } from "./github-emulator/errors.js";
export { EmulatorControl } from "./github-emulator/control-client.js";
export type {
  CreateJobRequest, JobView, RunnerView, EmulatorStats, Faults as EmulatorFaults, WebhookDelivery, JobStatus, RunnerConclusion,
  TraceJobSpec, TraceJobView, TraceSummary, TraceView,
} from "./github-emulator/control-types.js";
export {
  FLEET_REALISM, NO_REALISM, realismFromEnv, resolveRealism, SeededRandom, type RealismOptions, type ResolvedRealism,
} from "./github-emulator/realism.js";
export type { RateLimitFault } from "./github-emulator/faults.js";
export type { CallCounters } from "./github-emulator/stats.js";
export { signPayload as signWebhookPayload } from "./github-emulator/webhooks.js";
export { OpenApiValidator, type ConformanceResult } from "./github-emulator/openapi-conformance.js";
export {
  startSystemdSandbox, defaultSandboxBaseDir,
  type SystemdSandbox, type SystemdSandboxOptions, type SandboxCommandOptions,
} from "./systemd-sandbox.js";
export {
  startPodmanService, ensureMinimalImage, MINIMAL_IMAGE_PROGRAMS,
  type PodmanService, type PodmanServiceOptions, type MinimalImageOptions,
} from "./podman-service.js";
export { startFleet } from "./fleet.js";
export {
  AGENT_BIN, COORDINATOR_BIN, ALL_AGENT_ACTIONS, FLEET_RUNNER_VERSION, FLEET_GITHUB_TOKEN_ENV, FLEET_NATS_PASSWORD_ENV,
  HANDMADE_RUNNER_NAME, GITHUB_ONLY_RUNNER_NAME,
} from "./fleet-constants.js";
export { defaultFleetBaseDir, parseCliJson } from "./fleet-util.js";
export { harnessStateRoot, DEFAULT_STATE_ROOT } from "./state-root.js";
export type {
  Fleet, FleetOptions, FleetAgent, FleetAgentSpec, FleetAgentControl, FleetRuntime, FleetPoolSpec, FleetLaneSpec,
  FleetHandmade, FleetHandmadeOptions, FleetEnrollmentBundle, CliResult, AgentStatusJson,
} from "./fleet-types.js";
