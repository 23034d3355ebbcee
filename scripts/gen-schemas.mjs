#!/usr/bin/env node
// Writes the editor JSON Schemas of agent.yaml, lanekeeper.yaml (zod schemas in @lanekeeper/shared) and of the
// saved plan file (zod schema in the coordinator's plan/saved-plan.ts) under schemas/. `--check` fails when the
// committed files differ (CI runs it after the build). It imports the built packages (packages/*/dist), so run
// `npm run build` first.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const dist = join(root, "packages/shared/dist/index.js");
if (!existsSync(dist)) {
  console.error("packages/shared/dist/index.js is missing: run `npm run build` first");
  process.exit(2);
}
const shared = await import(dist);
// The saved plan file (`lanekeeper plan --out`) is the coordinator's own format.
const savedPlanDist = join(root, "packages/coordinator/dist/plan/saved-plan.js");
if (!existsSync(savedPlanDist)) {
  console.error("packages/coordinator/dist/plan/saved-plan.js is missing: run `npm run build` first");
  process.exit(2);
}
const savedPlan = await import(savedPlanDist);
const outputs = {
  "schemas/agent-config.schema.json": shared.agentConfigJsonSchema(),
  "schemas/policy.schema.json": shared.policyJsonSchema(),
  "schemas/saved-plan.schema.json": savedPlan.savedPlanJsonSchema(),
};
const check = process.argv.includes("--check");
let drift = false;
for (const [rel, schema] of Object.entries(outputs)) {
  const file = join(root, rel);
  const text = `${JSON.stringify(schema, null, 2)}\n`;
  if (check) {
    const current = existsSync(file) ? readFileSync(file, "utf8") : "";
    if (current !== text) {
      drift = true;
      console.error(`${rel} is out of date: run \`npm run build && npm run schemas\` and commit the result`);
    }
  } else {
    writeFileSync(file, text);
    console.log(`wrote ${rel}`);
  }
}
if (drift) process.exit(1);
if (check) console.log("schemas: up to date");
