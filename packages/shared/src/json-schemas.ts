/** JSON Schemas for editors, generated from the zod schemas (`npm run schemas` writes them under `schemas/`). */
import { z } from "zod";
import { agentConfigSchema } from "./agent-config.js";
import { policySchema } from "./policy.js";

function toSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { io: "input", target: "draft-2020-12", unrepresentable: "any" });
}

/** JSON Schema of `agent.yaml` (input form: fields with defaults are optional). */
export function agentConfigJsonSchema(): Record<string, unknown> {
  return toSchema(agentConfigSchema);
}

/** JSON Schema of `lanekeeper.yaml` (input form). Cross-field rules are enforced by `parsePolicy` only. */
export function policyJsonSchema(): Record<string, unknown> {
  return toSchema(policySchema);
}
