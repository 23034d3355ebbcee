#!/usr/bin/env node
// The Debian packages of the release (`npm run dist` runs this after scripts/dist.mjs):
//
//   node scripts/dist-deb.mjs [--out <dir>]      (default <repo>/dist)
//
// From the single executables scripts/dist.mjs left in <dir> (<cli>-<version>-linux-<arch>), builds
//   lanekeeper-agent_<version>_<debarch>.deb   /usr/bin/lanekeeper-agent, the hardened lanekeeper-agent.service
//   lanekeeper_<version>_<debarch>.deb         /usr/bin/lanekeeper, the hardened lanekeeper.service (`serve`)
// with the maintainer scripts in install/debian/ (system users and directories, nothing started unconfigured,
// clean remove and purge), and adds them to <dir>/SHA256SUMS.
//
// Reproducible: `dpkg-deb --root-owner-group`, files sorted by dpkg-deb, every mtime clamped to
// $SOURCE_DATE_EPOCH (else the commit time of HEAD, as scripts/dist.mjs). gzip, which every dpkg reads, at level 1:
// the payload is mostly the Node binary, and -9 saves a tenth of the size for five times the build time.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const INSTALL = join(ROOT, "install");

/** Debian architecture names of node's process.arch values the release is built for. */
const DEB_ARCH = { x64: "amd64", arm64: "arm64" };

/**
 * The two packages: which single executable, which unit template and how its placeholders are filled (the
 * installers' default paths, so a package and an installed host look alike).
 */
const PACKAGES = [
  {
    name: "lanekeeper-agent",
    cli: "lanekeeper-agent",
    unit: "lanekeeper-agent.service",
    description: "lanekeeper agent: owns the GitHub Actions runner lanes of this host",
    longDescription: [
      "Runs lanes (systemd units or containers) as the lanekeeper coordinator's signed intents ask, within",
      "what this host allows in /etc/lanekeeper/agent.yaml (control is disabled until you enable it).",
      "Configure with `lanekeeper-agent init --host-id <id>`, then `systemctl start lanekeeper-agent`.",
    ],
    placeholders: {
      "@AGENT@": "/usr/bin/lanekeeper-agent",
      "@CONFIG_DIR@": "/etc/lanekeeper",
      "@STATE_DIR@": "/var/lib/lanekeeper",
      "@LANE_ROOT@": "/var/lib/lanekeeper-lanes",
      "@UNIT_DIR@": "/etc/systemd/system",
      "@SOCKET_DIR@": "/run/lanekeeper",
    },
  },
  {
    name: "lanekeeper",
    cli: "lanekeeper",
    unit: "lanekeeper.service",
    description: "lanekeeper coordinator: reconciles GitHub Actions runner lanes with a policy",
    longDescription: [
      "The `lanekeeper` CLI (plan, apply, status, lanes, hosts, keys, audit) and `lanekeeper serve` as a",
      "hardened service, which starts once /etc/lanekeeper-coordinator/lanekeeper.yaml is in place",
      "(install-coordinator.sh --packaged puts policy, key and logins there).",
    ],
    placeholders: {
      "@LANEKEEPER@": "/usr/bin/lanekeeper",
      "@CONFIG_DIR@": "/etc/lanekeeper-coordinator",
      "@STATE_DIR@": "/var/lib/lanekeeper-coordinator",
      "@METRICS_PORT@": "9470",
    },
  },
];

const COPYRIGHT = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lanekeeper
Source: https://github.com/lanekeeper/lanekeeper

Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
`;

/** The mtime clamp: $SOURCE_DATE_EPOCH, else HEAD's commit time, else 0 (the same rule as scripts/dist.mjs). */
function sourceDateEpoch() {
  let text = process.env.SOURCE_DATE_EPOCH;
  if (!text) {
    try {
      text = execFileSync("git", ["log", "-1", "--format=%ct"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      text = "0";
    }
  }
  const epoch = Number(text);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`SOURCE_DATE_EPOCH is not a time in seconds: ${text}`);
  return epoch;
}

/** npm's semver as a Debian version: a pre-release sorts before the release (`1.0.0-rc.1` → `1.0.0~rc.1`). */
export function debianVersion(version) {
  if (!/^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/.test(version)) throw new Error(`not a version: ${version}`);
  return version.replace("-", "~").replace(/\+/g, ".");
}

/** The single executables in `outDir`: `{ cli, version, arch, file }`. */
function singleExecutables(outDir) {
  const found = [];
  for (const name of readdirSync(outDir)) {
    const m = /^(lanekeeper(?:-agent)?)-(\d[^/]*)-linux-([a-z0-9]+)$/.exec(name);
    if (m) found.push({ cli: m[1], version: m[2], arch: m[3], file: join(outDir, name) });
  }
  return found;
}

/** Writes `data` at `path` with `mode`, creating parents 0755. */
function put(path, data, mode) {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileSync(path, data);
  chmodSync(path, mode);
}

/** Total size in bytes of the files under `dir`, DEBIAN/ left out (the control file's Installed-Size, in KiB). */
function treeBytes(dir) {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "DEBIAN") continue;
    const p = join(dir, entry.name);
    bytes += entry.isDirectory() ? treeBytes(p) : statSync(p).size;
  }
  return bytes;
}

/**
 * Builds one package from its single executable into `outDir`; returns the .deb's file name.
 * @param {(typeof PACKAGES)[number]} pkg
 * @param {{ version: string, arch: string, file: string }} exe
 * @param {string} outDir
 * @param {string} scratch
 * @param {number} epoch
 */
function buildPackage(pkg, exe, outDir, scratch, epoch) {
  const debArch = DEB_ARCH[exe.arch];
  if (debArch === undefined) throw new Error(`no Debian architecture for ${exe.arch}`);
  const version = debianVersion(exe.version);
  const root = join(scratch, pkg.name, "root");
  put(join(root, "usr/bin", pkg.cli), readFileSync(exe.file), 0o755);
  let unit = readFileSync(join(INSTALL, pkg.unit), "utf8");
  for (const [from, to] of Object.entries(pkg.placeholders)) unit = unit.replaceAll(from, to);
  if (/@[A-Z_]+@/.test(unit)) throw new Error(`${pkg.unit}: placeholder left: ${/@[A-Z_]+@/.exec(unit)[0]}`);
  put(join(root, "usr/lib/systemd/system", pkg.unit), unit, 0o644);
  put(join(root, "usr/share/doc", pkg.name, "copyright"), COPYRIGHT, 0o644);
  for (const script of ["postinst", "prerm", "postrm"]) {
    put(join(root, "DEBIAN", script), readFileSync(join(INSTALL, "debian", `${pkg.name}.${script}`)), 0o755);
  }
  const control = [
    `Package: ${pkg.name}`,
    `Version: ${version}`,
    `Architecture: ${debArch}`,
    "Maintainer: lanekeeper maintainers <lanekeeper@users.noreply.github.com>",
    `Installed-Size: ${Math.ceil(treeBytes(root) / 1024)}`,
    "Depends: passwd",
    "Recommends: systemd",
    "Section: admin",
    "Priority: optional",
    "Homepage: https://github.com/lanekeeper/lanekeeper",
    `Description: ${pkg.description}`,
    ...pkg.longDescription.map((l) => ` ${l}`),
    "",
  ].join("\n");
  put(join(root, "DEBIAN/control"), control, 0o644);
  // Directories: one mode whatever the build host's umask.
  execFileSync("find", [root, "-type", "d", "-exec", "chmod", "0755", "{}", "+"]);
  const name = `${pkg.name}_${version}_${debArch}.deb`;
  const built = join(scratch, name);
  execFileSync("dpkg-deb", ["--root-owner-group", "-Zgzip", "-z1", "--build", root, built], {
    env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
    stdio: ["ignore", "ignore", "inherit"],
  });
  renameSync(built, join(outDir, name));
  return name;
}

/** Adds (or replaces) `names` in `outDir`/SHA256SUMS, keeping it sorted by name; written atomically. */
function addSums(outDir, names) {
  const path = join(outDir, "SHA256SUMS");
  const sums = new Map();
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    // No sums yet: the packages are the first entries.
  }
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (m) sums.set(m[2], m[1]);
  }
  for (const name of names) sums.set(name, createHash("sha256").update(readFileSync(join(outDir, name))).digest("hex"));
  const sorted = [...sums.keys()].sort();
  writeFileSync(`${path}.tmp`, sorted.map((n) => `${sums.get(n)}  ${n}\n`).join(""));
  renameSync(`${path}.tmp`, path);
}

/** Builds both packages from the single executables in `outDir`; returns their file names. */
export function distDeb(outDir) {
  const exes = singleExecutables(outDir);
  const epoch = sourceDateEpoch();
  const scratch = mkdtempSync(join(outDir, ".deb-"));
  try {
    const names = [];
    for (const pkg of PACKAGES) {
      const mine = exes.filter((e) => e.cli === pkg.cli);
      if (mine.length === 0) throw new Error(`no ${pkg.cli}-<version>-linux-<arch> in ${outDir}: run scripts/dist.mjs first`);
      for (const exe of mine) names.push(buildPackage(pkg, exe, outDir, scratch, epoch));
    }
    addSums(outDir, names);
    return names;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  const outDir = resolve(values.out ?? join(ROOT, "dist"));
  const started = Date.now();
  for (const name of distDeb(outDir)) console.log(`${outDir}/${name}`);
  console.log(`${outDir}/SHA256SUMS (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

