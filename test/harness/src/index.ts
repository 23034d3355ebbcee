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
