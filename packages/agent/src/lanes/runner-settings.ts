/**
 * Reading the runner's `.runner` file (camel-case JSON of `RunnerSettings`, contract 2.3). It holds no secret;
 * the agent reads the runner id and name from it for inventory and to know whether a runner is configured.
 */
import type { RunnerSettings } from "../runtimes/lane-runtime.js";

/** Parse `.runner` content (the real runner writes a UTF-8 BOM). `undefined` when it is not a runner file. */
export function parseRunnerSettings(text: string): RunnerSettings | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const agentId = typeof o.agentId === "number" ? o.agentId : typeof o.agentId === "string" ? Number.parseInt(o.agentId, 10) : NaN;
  if (!Number.isSafeInteger(agentId) || agentId < 0) return undefined;
  return {
    agentId,
    agentName: typeof o.agentName === "string" ? o.agentName : "",
    gitHubUrl: typeof o.gitHubUrl === "string" ? o.gitHubUrl : "",
    ephemeral: o.ephemeral === true,
  };
}

/** Runner console lines the agent classifies (contract 2.4). */
export const REGISTRATION_DELETED_TEXT = "registration has been deleted";
/** Printed by the listener when it connects: resets nothing here, but shows the run got that far. */
export const LISTENING_TEXT = "Listening for Jobs";
