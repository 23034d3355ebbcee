#!/usr/bin/env node
// Regenerates packages/shared/src/gen from proto/ with the pinned buf and ts-proto
// from node_modules. With --check, generates into a temp dir and fails on any difference.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const outDir = join(root, "packages/shared/src/gen");
const check = process.argv.includes("--check");
const buf = join(root, "node_modules/.bin/buf");

function generate(target) {
  const tmp = mkdtempSync(join(tmpdir(), "lk-gen-"));
  const template = readFileSync(join(root, "buf.gen.yaml"), "utf8").replace(
    "out: packages/shared/src/gen",
    `out: ${target}`,
  );
  const templatePath = join(tmp, "buf.gen.yaml");
  writeFileSync(templatePath, template);
  execFileSync(buf, ["generate", "--template", templatePath], { cwd: root, stdio: "inherit" });
  rmSync(tmp, { recursive: true, force: true });
}

function listFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

if (check) {
  const tmp = mkdtempSync(join(tmpdir(), "lk-gen-check-"));
  generate(tmp);
  const want = listFiles(tmp);
  const have = listFiles(outDir);
  const problems = [];
  for (const f of new Set([...want, ...have])) {
    if (!want.includes(f)) problems.push(`stale file: ${f}`);
    else if (!have.includes(f)) problems.push(`missing file: ${f}`);
    else if (readFileSync(join(tmp, f), "utf8") !== readFileSync(join(outDir, f), "utf8")) problems.push(`differs: ${f}`);
  }
  rmSync(tmp, { recursive: true, force: true });
  if (problems.length > 0) {
    console.error(`gen:check failed; run 'npm run gen' and commit:\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log("gen:check: generated code is up to date");
} else {
  rmSync(outDir, { recursive: true, force: true });
  generate(outDir);
  console.log(`generated ${listFiles(outDir).length} files into ${relative(root, outDir)}`);
}
