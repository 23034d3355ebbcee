#!/usr/bin/env node
// The import rules ESLint cannot see (it catches package names; this catches relative paths and cycles):
//  1. no import cycle inside a package, type-only imports included (a type cycle is still a design cycle, and
//     it turns into a runtime one the day someone adds a value import);
//  2. agent and coordinator never import each other;
//  3. shared imports nothing outside packages/shared/src by relative path (it is the bottom layer; its tests
//     may import test fixtures under test/);
//  4. product code (packages/*/src, tests beside it excepted) imports nothing from test/, @lanekeeper/harness
//     or @lanekeeper/testing.
// Usage: node scripts/check-imports.mjs [--root <dir>]   (--root: check another tree, e.g. a test fixture)
// Exit 0 when clean (warnings go to stderr), 1 on any violation. scripts/check-imports.test.mjs covers each rule.
import madge from "madge";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const rootArg = process.argv.indexOf("--root");
const root = rootArg > 0 ? resolve(process.argv[rootArg + 1] ?? ".") : new URL("..", import.meta.url).pathname;

const PRODUCT = ["packages/shared/src", "packages/agent/src", "packages/coordinator/src"];
const CYCLE_CHECKED = [...PRODUCT, "test/harness/src", "test/support/src"];

let failed = false;
const fail = (msg) => {
  failed = true;
  console.error(msg);
};

for (const dir of CYCLE_CHECKED) {
  if (!existsSync(join(root, dir))) continue;
  const res = await madge(join(root, dir), {
    fileExtensions: ["ts"],
    tsConfig: join(root, "tsconfig.base.json"),
    excludeRegExp: [/\.test\.ts$/],
  });
  for (const c of res.circular()) {
    fail(`import cycle in ${dir}: ${c.join(" -> ")}`);
  }
}

/** Every module specifier in `text`: static imports and re-exports, side-effect imports, dynamic imports. */
function specifiers(text) {
  const re = /^\s*(?:import|export)\b[^;]*?\bfrom\s+["']([^"']+)["']|^\s*import\s+["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
  return [...text.matchAll(re)].map((m) => m[1] ?? m[2] ?? m[3]);
}

function tsFiles(dir) {
  if (!existsSync(join(root, dir))) return [];
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

const crossing = {
  "packages/agent/src": /(@lanekeeper\/coordinator|packages\/coordinator|\.\.\/\.\.\/coordinator)/,
  "packages/coordinator/src": /(@lanekeeper\/agent|packages\/agent|\.\.\/\.\.\/agent)/,
};
const testOnlyPackages = /^@lanekeeper\/(harness|testing)(\/|$)/;
const testDir = join(root, "test") + sep;
const sharedDir = join(root, "packages/shared/src") + sep;

for (const dir of PRODUCT) {
  for (const file of tsFiles(dir)) {
    const isTest = file.endsWith(".test.ts");
    const where = relative(root, file);
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      const target = spec.startsWith(".") ? resolve(dirname(file), spec) : undefined;
      if (crossing[dir]?.test(spec)) fail(`${where}: forbidden import ${spec} (agent and coordinator never import each other)`);
      // Its tests may read test fixtures (test/...), nothing else outside.
      const fixture = isTest && target?.startsWith(testDir) === true;
      if (dir === "packages/shared/src" && target !== undefined && !target.startsWith(sharedDir) && !fixture) {
        fail(`${where}: relative import ${spec} leaves packages/shared/src (shared is the bottom layer)`);
      }
      if (!isTest && (testOnlyPackages.test(spec) || (target !== undefined && target.startsWith(testDir)))) {
        fail(`${where}: product code imports test code ${spec}`);
      }
    }
  }
}
if (failed) process.exit(1);
console.log("imports: no cycles, no agent/coordinator cross-imports, shared self-contained, no test code in product code");
