// Public API of @lanekeeper/testing: test doubles and fleet builders for lanekeeper's own tests and benchmarks.
// Product code (packages/*/src) must never import this package; scripts/check-imports.mjs enforces it.
export { reasonOf } from "./reason-of.js";
export { onePoolPolicyYaml, policyIssues, type OnePoolPolicyParts } from "./policy-yaml.js";
export { RecordingExecutor, type RecordedCall } from "./recording-executor.js";
export * from "./scenario.js";
export { layoutSimFleet, simPolicyText, SIM_POOL, SIM_RUNNER_VERSION, type SimFleetSize, type SimFleetLayout, type SimLaneEntry, type SimPolicyEndpoints } from "./fleet-sim/sim-fleet-layout.js";
export { SimWorkers, type SimWorkersOptions, type SimFleetStats } from "./fleet-sim/sim-workers.js";
export { SimRunnerRuntime, HttpRunnerProtocol, decodeJitConfig, type SimRunnerProtocol } from "./fleet-sim/sim-runtime.js";
export type { SimHostSpec, SimHostCommon, SimEnrollment } from "./fleet-sim/sim-host.js";
export type { SimWorkerStats } from "./fleet-sim/sim-messages.js";
export {
  startFleetSimulation, SIM_COORDINATOR_BIN,
  type FleetSimulation, type FleetSimulationOptions, type FleetSimulationDeps, type SimCliResult, type SimServe, type SimGitHub, type SimNats,
} from "./fleet-sim/fleet-simulation.js";
