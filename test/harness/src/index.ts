export {};
export { LauncherError, type LauncherErrorCode } from "./launcher-error.js";
export * as launcherLimits from "./launcher-limits.js";
export { startNatsServer, type NatsServerHandle, type NatsServerOptions, type NatsUsers } from "./nats-server.js";
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
