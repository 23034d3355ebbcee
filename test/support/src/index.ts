// Public API of @lanekeeper/testing: test doubles and fleet builders for lanekeeper's own tests and benchmarks.
// Product code (packages/*/src) must never import this package; scripts/check-imports.mjs enforces it.
export { reasonOf } from "./reason-of.js";
export { RecordingExecutor, type RecordedCall } from "./recording-executor.js";
export * from "./scenario.js";
