// Public API of @lanekeeper/agent. See docs/agent.md and docs/internals.md.
export * from "./errors.js";
export * from "./limits.js";
export { type AgentLog, type AuditEntryInput, type AuditPhase, type AuditSink, silentLog } from "./audit-sink.js";
export { type CommandOptions, type CommandResult, type CommandRunner, execFileRunner, prefixedRunner } from "./runtimes/command-runner.js";
export * from "./runtimes/lane-runtime.js";
export * from "./lanes/lane-marker.js";
export { LaneDirectories, LANE_FILES } from "./lanes/lane-directory.js";
export { SystemdRuntime, type SystemdRuntimeOptions, CONSOLE_START_MARK } from "./runtimes/systemd-runtime.js";
export { renderLaneUnit, parseUnitFile, LANE_UNIT_HARDENING, UNIT_HOST_KEY, UNIT_LANE_KEY, UNIT_MARKER_KEY } from "./runtimes/systemd-unit.js";
export { ContainerRuntime, type ContainerRuntimeOptions, CONTAINER_LABELS, CONTAINER_START_SCRIPT } from "./runtimes/container-runtime.js";
export * from "./lanes/lane-manager.js";
export { MemoryRuntime, type MemoryRuntimeOptions, type MemoryFaultPoint, type MemoryLaneSnapshot, runShOutcome } from "./runtimes/memory-runtime.js";
export { MemoryProcessTable, type MemoryProcess } from "./runtimes/memory-processes.js";
export { type ProcessTable, procProcessTable } from "./runtimes/process-table.js";
export { laneRecordFromSpec, validateLaneLabels, validateGithubUrl } from "./lanes/lane-spec.js";
export { type HealthPolicy, type AttentionReason, backoffDelayMs, decideHealth, recoveryNote } from "./lanes/health-policy.js";
export { type LaneHold, readHold, writeHold, removeHold, listHolds } from "./lanes/lane-holds.js";
export { OperationJournal, type JournalEntry, type CrashHook, CREATE_STEPS, REMOVE_STEPS, ARM_STEPS } from "./lanes/operation-journal.js";
export { type UserAccount, lookupUser, lookupGroupId } from "./lanes/user-account.js";
export {
  Intake, UNKNOWN_INTENT_ID,
  type IntakeOptions, type IntakeOutcome, type KeySource, type KeySetUpdateHandler,
} from "./intake/intake.js";
export * from "./intake/lane-executor.js";
export { LaneManagerExecutor } from "./intake/lane-manager-executor.js";
export * from "./intake/replay-store.js";
export * from "./intake/state-store.js";
export { allowlistOf, intakeControlOf, checkIntentAllowed, checkLaneAllowed, laneMatchesSpec, allowedWhileHeld, type IntakeControl, type AllowedIntent } from "./intake/intake-policy.js";
export * from "./intake/agent-trust.js";
export * from "./intake/inventory-publisher.js";
export * as intakeLimits from "./intake/limits.js";
export { AgentDaemon, type AgentDaemonOptions, DEFAULT_ENGINE_SOCKETS } from "./agent-daemon.js";
export { startAgentIntake, type AgentIntakeHandle, type StartAgentIntakeOptions } from "./intake/agent-intake.js";
export { type AgentKeys, initAgent, loadAgentKeys, enrollmentBundle } from "./agent-identity.js";
export { AGENT_VERSION } from "./agent-version.js";
export { InventoryBuilder, type InventoryBuilderOptions } from "./status/inventory.js";
export { scanRunnerRoots } from "./runtimes/runner-root-scan.js";
export { gatherCapabilities } from "./status/capabilities.js";
export { StatusServer, type StatusServerOptions } from "./status/status-server.js";
export { fetchStatus } from "./status/status-client.js";
export { formatStatus, statusJson } from "./status/status-format.js";
export { EXIT, exitCodeFor } from "./exit-codes.js";
export { main as runCli, loadConfig, DEFAULT_CONFIG_PATH } from "./cli.js";
export { InstanceLock, INSTANCE_LOCK_FILE } from "./instance-lock.js";
