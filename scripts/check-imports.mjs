#!/usr/bin/env node
// Fails on import cycles inside any package and on imports across the agent/coordinator line.
// ESLint's no-restricted-imports catches the package names; this catches relative paths and cycles.
import madge from "madge";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const packages = ["packages/shared/src", "packages/agent/src", "packages/coordinator/src", "test/harness/src"];
let failed = false;

for (const dir of packages) {
  const res = await madge(join(root, dir), {
    fileExtensions: ["ts"],
    tsConfig: join(root, "tsconfig.base.json"),
    detectiveOptions: { ts: { skipTypeImports: true } },
    excludeRegExp: [/\.test\.ts$/],
  });
  const cycles = res.circular();
  if (cycles.length > 0) {
    failed = true;
    for (const c of cycles) console.error(`import cycle in ${dir}: ${c.join(" -> ")}`);
  }
}

const forbidden = { "packages/agent/src": /(@lanekeeper\/coordinator|packages\/coordinator|\.\.\/\.\.\/coordinator)/, "packages/coordinator/src": /(@lanekeeper\/agent|packages\/agent|\.\.\/\.\.\/agent)/ };
for (const [dir, re] of Object.entries(forbidden)) {
  for (const e of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith(".ts")) continue;
    const file = join(e.parentPath, e.name);
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/^\s*(?:import|export)[^;]*?from\s+["']([^"']+)["']/gm)) {
      if (re.test(m[1])) {
        failed = true;
        console.error(`${relative(root, file)}: forbidden import ${m[1]}`);
      }
    }
  }
}
if (failed) process.exit(1);
console.log("imports: no cycles, no agent/coordinator cross-imports");
