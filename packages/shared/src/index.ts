// Public API of @lanekeeper/shared. See docs/internals.md for the module map.
export * from "./gen/lanekeeper/v1/envelope.js";
export * from "./gen/lanekeeper/v1/intent.js";
export * from "./gen/lanekeeper/v1/inventory.js";
export * from "./gen/lanekeeper/v1/lane.js";
export * from "./gen/lanekeeper/v1/status.js";
export * from "./errors.js";
export * from "./limits.js";
export * from "./clock.js";
export * from "./names.js";
export * from "./labels.js";
export * from "./keys.js";
