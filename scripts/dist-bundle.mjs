// esbuild bundles of the two CLIs for the release artifacts (scripts/dist.mjs): one ESM file per CLI for the
// tarballs (run by a system node), one CommonJS file per CLI for the single executables (Node's SEA main
// script must be CommonJS). Every dependency is inlined; only Node's builtins stay outside.
import { build } from "esbuild";

/**
 * The two CLIs: where their entry module is (compiled by `tsc -b`) and how it is started, given `main`
 * imported from `module`: `esm` for the ES module bundle, `cjs` for the CommonJS one (no top-level await).
 */
export const CLIS = [
  {
    name: "lanekeeper",
    packageDir: "packages/coordinator",
    module: "packages/coordinator/dist/cli/main.js",
    // main() sets process.exitCode itself (and unrefs a last-resort exit timer).
    esm: "await main();",
    cjs: "main().catch((err) => { console.error(err); process.exitCode = 1; });",
  },
  {
    name: "lanekeeper-agent",
    packageDir: "packages/agent",
    module: "packages/agent/dist/cli.js",
    // As in packages/agent/bin: exit explicitly once the command is over, whatever still holds the loop.
    esm: "process.exit(await main(process.argv.slice(2)));",
    cjs: "main(process.argv.slice(2)).then((code) => process.exit(code), (err) => { console.error(err); process.exit(1); });",
  },
];

// Native addons are optional in every dependency that has one (ssh2 under dockerode falls back to JS when its
// `require("….node")` throws): left out, so the bundle is the same on every build host and architecture.
const EXTERNAL = ["*.node"];

// CommonJS dependencies call `require` for builtins and read `__dirname`; an ESM file has neither, so the ESM
// bundle makes them. The names are the ones esbuild's require shim and those dependencies look up.
const ESM_BANNER = [
  'import { createRequire as __lkCreateRequire } from "node:module";',
  'import { fileURLToPath as __lkFileURLToPath } from "node:url";',
  'import { dirname as __lkDirname } from "node:path";',
  "const require = __lkCreateRequire(import.meta.url);",
  "const __filename = __lkFileURLToPath(import.meta.url);",
  "const __dirname = __lkDirname(__filename);",
].join("\n");

// ESM code reads import.meta.url; CommonJS has no import.meta, so the CJS bundle gets a stand-in computed from
// __filename (in a single executable, the executable's own path).
const CJS_BANNER = 'var __lkImportMetaUrl = require("node:url").pathToFileURL(__filename).href;';

/**
 * Options common to both bundles.
 * @param {{ version: string, commit: string }} info
 */
function baseOptions(info) {
  return {
    bundle: true,
    platform: "node",
    target: "node20",
    external: EXTERNAL,
    // build-info (packages/shared) uses these when they are defined; unbundled code reads package.json instead.
    define: {
      __LANEKEEPER_VERSION__: JSON.stringify(info.version),
      __LANEKEEPER_COMMIT__: JSON.stringify(info.commit),
    },
    legalComments: "eof",
    logLevel: "warning",
    // Only `require("….node")` inside try blocks is expected to stay unresolved (see EXTERNAL).
    logOverride: { "require-resolve-not-external": "silent" },
    write: false,
    // Paths in the output (comments naming each module) are relative to this, so the bytes do not depend on
    // where the checkout is.
    absWorkingDir: info.root,
  };
}

/**
 * Bundles one CLI as an ES module (for `lib/<cli>.mjs` in the tarball).
 * @param {(typeof CLIS)[number]} cli
 * @param {{ root: string, version: string, commit: string }} info
 * @returns {Promise<Buffer>}
 */
export async function bundleEsm(cli, info) {
  const result = await build({
    ...baseOptions(info),
    stdin: {
      contents: `import { main } from "./${cli.module}";\n${cli.esm}\n`,
      resolveDir: info.root,
      sourcefile: `${cli.name}-entry.mjs`,
      loader: "js",
    },
    format: "esm",
    banner: { js: ESM_BANNER },
  });
  return Buffer.from(result.outputFiles[0].contents);
}

/**
 * Bundles one CLI as CommonJS (the main script of its single executable).
 * @param {(typeof CLIS)[number]} cli
 * @param {{ root: string, version: string, commit: string }} info
 * @returns {Promise<Buffer>}
 */
export async function bundleCjs(cli, info) {
  const result = await build({
    ...baseOptions(info),
    stdin: {
      contents: `import { main } from "./${cli.module}";\n${cli.cjs}\n`,
      resolveDir: info.root,
      sourcefile: `${cli.name}-sea-entry.mjs`,
      loader: "js",
    },
    format: "cjs",
    define: { ...baseOptions(info).define, "import.meta.url": "__lkImportMetaUrl" },
    banner: { js: CJS_BANNER },
  });
  return Buffer.from(result.outputFiles[0].contents);
}
