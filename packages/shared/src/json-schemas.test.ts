import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { agentConfigJsonSchema, policyJsonSchema } from "./json-schemas.js";

const committed = (name: string): unknown => JSON.parse(readFileSync(new URL(`../../../schemas/${name}`, import.meta.url), "utf8"));

describe("JSON Schemas", () => {
  it("match the committed files (run `npm run build && npm run schemas` after changing a schema)", () => {
    expect(agentConfigJsonSchema()).toEqual(committed("agent-config.schema.json"));
    expect(policyJsonSchema()).toEqual(committed("policy.schema.json"));
  });

  it("publish defaults, strictness and patterns for editors", () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- walking generated JSON
    const agent = agentConfigJsonSchema() as { properties: Record<string, any>; additionalProperties: boolean; required: string[] };
    expect(agent.additionalProperties).toBe(false);
    expect(agent.required.sort()).toEqual(["hostId", "nats"]);
    expect(agent.properties.unitDir.default).toBe("/etc/systemd/system");
    expect(agent.properties.control.properties.enabled.default).toBe(false);
    expect(agent.properties.hostId.pattern).toBe("^[a-z0-9][a-z0-9-]{0,62}$");
  });
});
