#!/usr/bin/env node
// `npm run dist`: the release artifacts of both CLIs, reproducibly (same inputs, same bytes).
//
//   node scripts/dist.mjs [--out <dir>]     (default <repo>/dist; `npm run dist` runs `tsc -b` first)
//
// For each CLI (`lanekeeper`, `lanekeeper-agent`), with <version> from its package.json and <arch> this
// node's (x64, arm64):
//   <cli>-<version>.tar.gz              bin/<cli> (sh launcher: node on PATH, or $LANEKEEPER_NODE) and
//                                       lib/<cli>.mjs (one ES module, every dependency inlined)
//   <cli>-<version>-linux-<arch>        a single executable carrying this node's runtime (Node SEA)
// and SHA256SUMS over all of them (`sha256sum -c SHA256SUMS` in the output directory checks them).
//
// Reproducible: the mtime in the tarballs is $SOURCE_DATE_EPOCH, else the commit time of HEAD; the commit
// baked in (`--version`) is $LANEKEEPER_COMMIT, else `git rev-parse --short HEAD`, else "unknown". The single
// executables copy the running node binary, so they are the same bytes only for the same node.
// Artifacts are written to a scratch directory and renamed into place, so a concurrent build or reader never
// sees half a file; other files in the output directory (Debian packages, say) are left alone.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CLIS, bundleCjs, bundleEsm } from "./dist-bundle.mjs";
import { buildSea } from "./dist-sea.mjs";
import { tarGz } from "./dist-tar.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Output of a git command in the repository, or undefined outside a checkout. */
function git(args) {
  try {
    return execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

/** The build's fixed inputs that do not come from the tree: the commit to report and the archive mtime. */
function buildStamp() {
  const commit = process.env.LANEKEEPER_COMMIT || git(["rev-parse", "--short", "HEAD"]) || "unknown";
  const epochText = process.env.SOURCE_DATE_EPOCH || git(["log", "-1", "--format=%ct"]) || "0";
  const epoch = Number(epochText);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`SOURCE_DATE_EPOCH is not a time in seconds: ${epochText}`);
  return { commit, epoch };
}

/** The launcher in bin/: finds lib/ through symlinks (a /usr/bin link, say) and runs the bundle with node. */
function launcher(cli, version, commit) {
  return `#!/bin/sh
# ${cli} ${version} (${commit}): runs lib/${cli}.mjs with node 20.19 or later, from PATH or $LANEKEEPER_NODE.
# The single executable ${cli}-${version}-linux-<arch> needs no node at all.
set -e
node=\${LANEKEEPER_NODE:-node}
if ! command -v "$node" >/dev/null 2>&1; then
  echo "${cli}: cannot find node ($node) on PATH; install Node.js 20.19 or later, set LANEKEEPER_NODE, or use the single executable" >&2
  exit 127
fi
here=$(dirname "$(readlink -f "$0")")
exec "$node" "$here/../lib/${cli}.mjs" "$@"
`;
}

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/** Builds every artifact into `outDir`; returns the artifact names in SHA256SUMS order. */
export async function dist(outDir) {
  const { commit, epoch } = buildStamp();
  mkdirSync(outDir, { recursive: true });
  const scratch = mkdtempSync(join(outDir, ".build-"));
  try {
    const sums = new Map();
    const arch = process.arch;
    for (const cli of CLIS) {
      const version = JSON.parse(readFileSync(join(ROOT, cli.packageDir, "package.json"), "utf8")).version;
      const info = { root: ROOT, version, commit };

      const tarName = `${cli.name}-${version}.tar.gz`;
      const tar = tarGz(
        [
          { path: "bin", dir: true },
          { path: `bin/${cli.name}`, data: Buffer.from(launcher(cli.name, version, commit)), executable: true },
          { path: "lib", dir: true },
          { path: `lib/${cli.name}.mjs`, data: await bundleEsm(cli, info) },
        ],
        epoch,
      );
      writeFileSync(join(scratch, tarName), tar);
      sums.set(tarName, sha256(tar));

      const seaName = `${cli.name}-${version}-linux-${arch}`;
      buildSea({ mainScript: await bundleCjs(cli, info), work: scratch, name: cli.name, out: join(scratch, seaName) });
      sums.set(seaName, sha256(readFileSync(join(scratch, seaName))));
    }
    const names = [...sums.keys()].sort();
    writeFileSync(join(scratch, "SHA256SUMS"), names.map((n) => `${sums.get(n)}  ${n}\n`).join(""));
    for (const name of [...names, "SHA256SUMS"]) renameSync(join(scratch, name), join(outDir, name));
    return names;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  const outDir = resolve(values.out ?? join(ROOT, "dist"));
  const started = Date.now();
  const names = await dist(outDir);
  for (const name of names) console.log(`${outDir}/${name}`);
  console.log(`${outDir}/SHA256SUMS (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
