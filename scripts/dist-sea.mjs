// Single executables for the release artifacts (scripts/dist.mjs): Node's single-executable applications.
// The CommonJS bundle becomes a SEA blob (`node --experimental-sea-config`), which postject injects into a copy
// of the node binary that runs this script, so the executable carries exactly that Node runtime.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

// postject's own CLI, run as a child: its ELF library prints a warning per note section it does not know,
// which is noise unless the injection fails.
const POSTJECT_CLI = createRequire(import.meta.url).resolve("postject/dist/cli.js");

// The fuse Node's binary carries to tell a SEA from plain node (Node's docs, "Single executable applications").
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

/**
 * Builds one single executable at `out` from a CommonJS main script.
 * @param {{ mainScript: Buffer, work: string, name: string, out: string }} opts
 *   `work` is a scratch directory of the caller's, `name` the file stem used in it.
 */
export function buildSea({ mainScript, work, name, out }) {
  // Relative names, run in `work`: the blob records the main script's path, which must not vary by build.
  const main = `${name}.cjs`;
  const blob = `${name}.blob`;
  const config = `${name}.sea.json`;
  writeFileSync(join(work, main), mainScript);
  writeFileSync(
    join(work, config),
    JSON.stringify({
      main,
      output: blob,
      // The CLIs' output is their interface: no "experimental feature" warning on every run.
      disableExperimentalSEAWarning: true,
      // A V8 snapshot or code cache would tie the bytes to more than the inputs; start-up is fast enough.
      useSnapshot: false,
      useCodeCache: false,
    }),
  );
  run(process.execPath, ["--experimental-sea-config", config], work);
  copyFileSync(process.execPath, out);
  chmodSync(out, 0o755);
  run(process.execPath, [POSTJECT_CLI, out, "NODE_SEA_BLOB", join(work, blob), "--sentinel-fuse", SEA_FUSE], work);
}

/** Runs a build step quietly; on failure, its output goes into the error. */
function run(file, args, cwd) {
  try {
    execFileSync(file, args, { cwd, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const output = `${err.stdout ?? ""}${err.stderr ?? ""}`.trim();
    throw new Error(`${[file, ...args].join(" ")} failed: ${err.message}\n${output}`, { cause: err });
  }
}
