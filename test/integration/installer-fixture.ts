// Shared by the installer and package tests: the release artifacts built by the real `npm run dist` scripts (once
// per state of the inputs, shared by the test files through a lock), and a systemd sandbox in which an installer
// or dpkg may write where it would on a real host (/usr, /opt, /var/lib, /etc) without touching this machine.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer } from "node:net";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { formatTrustFile, generateSigningKey, signingKeyToPem } from "@lanekeeper/shared";
import { harnessStateRoot, startSystemdSandbox, waitUntil, type SystemdSandbox } from "@lanekeeper/harness";
import { initialKeySet } from "../../packages/coordinator/src/index.js";

const run = promisify(execFile);

export const repo = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** A registry nothing listens on: an installer that tried npm would fail, not fall back to the network. */
export const CLOSED_REGISTRY = "http://127.0.0.1:9";
/** Building the artifacts (bundles, single executables, packages) on a loaded 2-core machine. */
export const DIST_TIMEOUT_MS = 600_000;

/** Every file under `dir` (recursively) as `path size mtime`, sorted: cheap identity of a build's inputs. */
async function treeStamp(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await treeStamp(p)));
    else if (e.isFile()) {
      const s = await stat(p);
      out.push(`${relative(repo, p)} ${s.size} ${s.mtimeMs}`);
    }
  }
  return out.sort();
}

/**
 * The `npm run dist` output for the current build (`scripts/dist.mjs`, then `scripts/dist-deb.mjs`, the two steps
 * of `npm run dist`), in a directory under the harness state root named for the inputs: compiled packages,
 * package manifests, dist scripts and install/. Test files running at once build it once (a lock directory).
 * `$LK_DIST_DIR` names a directory of `npm run dist` output to use instead.
 */
export async function distArtifacts(): Promise<string> {
  // A directory already holding `npm run dist` output (a CI step that built it before the tests, say).
  if (process.env.LK_DIST_DIR) return process.env.LK_DIST_DIR;
  const stamp = [
    ...(await treeStamp(join(repo, "packages/shared/dist"))),
    ...(await treeStamp(join(repo, "packages/agent/dist"))),
    ...(await treeStamp(join(repo, "packages/coordinator/dist"))),
    ...(await treeStamp(join(repo, "install"))),
    ...(await treeStamp(join(repo, "scripts"))),
  ];
  for (const f of ["packages/agent/package.json", "packages/coordinator/package.json"]) {
    const s = await stat(join(repo, f));
    stamp.push(`${f} ${s.size} ${s.mtimeMs}`);
  }
  const key = createHash("sha256").update(stamp.join("\n")).digest("hex").slice(0, 16);
  const base = join(harnessStateRoot(), "dist");
  const out = join(base, key);
  const lock = `${out}.lock`;
  await mkdir(base, { recursive: true });
  if (await exists(join(out, "SHA256SUMS"))) return out;
  await waitUntil(
    async () => {
      try {
        await mkdir(lock);
        return true;
      } catch {
        return exists(join(out, "SHA256SUMS"));
      }
    },
    { timeoutMs: DIST_TIMEOUT_MS, what: "another test file's dist build" },
  );
  try {
    if (await exists(join(out, "SHA256SUMS"))) return out;
    const work = `${out}.work`;
    await rm(work, { recursive: true, force: true });
    // Old builds go: each is some 200 MB.
    for (const name of await readdir(base)) if (!name.startsWith(key)) await rm(join(base, name), { recursive: true, force: true });
    await run(process.execPath, ["scripts/dist.mjs", "--out", work], { cwd: repo, timeout: DIST_TIMEOUT_MS });
    await run(process.execPath, ["scripts/dist-deb.mjs", "--out", work], { cwd: repo, timeout: DIST_TIMEOUT_MS });
    await rename(work, out);
    return out;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Inside the sandbox (its own mount namespace; nothing here reaches the host): /usr and /opt become overlays whose
 * writes land in a tmpfs, /usr/lib/systemd/system an empty directory in systemd's unit path (where packages put
 * their units; the host's stay out), /var/lib a tmpfs with dpkg's database (an overlay), systemd's state and the
 * harness state root (sandbox directories, the artifacts) and the checkout mounted back, /var/log a tmpfs. /etc, /run, /tmp are the
 * sandbox's already.
 */
const ISOLATE = `
set -euo pipefail
iso=/run/lk-iso
mount --make-rprivate /
mkdir -p "$iso"
mount -t tmpfs -o mode=0755 tmpfs "$iso"
for d in usr opt; do
  mkdir -p "$iso/$d-up" "$iso/$d-work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$iso/$d-up,workdir=$iso/$d-work" "/$d"
done
mkdir -p "$iso/units" && mount --bind "$iso/units" /usr/lib/systemd/system
mkdir -p "$iso/var-lib" && mount --rbind /var/lib "$iso/var-lib" && mount --make-rprivate "$iso/var-lib"
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mkdir -p /var/lib/dpkg /var/lib/systemd "$iso/dpkg-up" "$iso/dpkg-work"
mount -t overlay overlay -o "lowerdir=$iso/var-lib/dpkg,upperdir=$iso/dpkg-up,workdir=$iso/dpkg-work" /var/lib/dpkg
mount --rbind "$iso/var-lib/systemd" /var/lib/systemd
# dpkg's log and anything else written there.
mount -t tmpfs -o mode=0755 tmpfs /var/log
# The harness state root and the checkout, when they live below /var/lib: their top directory comes back.
for keep in "$@"; do
  case "$keep" in
    /var/lib/*)
      top=\${keep#/var/lib/}; top=\${top%%/*}
      if ! mountpoint -q "/var/lib/$top"; then mkdir -p "/var/lib/$top" && mount --rbind "$iso/var-lib/$top" "/var/lib/$top"; fi ;;
  esac
done
mount --make-rshared /
`;

/** A booted systemd sandbox with {@link ISOLATE} applied and systemd reloaded. */
export async function startInstallSandbox(): Promise<SystemdSandbox> {
  const sd = await startSystemdSandbox({ extraUnitPaths: ["/usr/lib/systemd/system"] });
  try {
    const r = await sd.exec("/bin/bash", ["-c", ISOLATE, "isolate", harnessStateRoot(), repo]);
    if (r.code !== 0) throw new Error(`cannot isolate the sandbox's system directories: ${r.stderr}`);
    const reload = await sd.systemctl("daemon-reload");
    if (reload.code !== 0) throw new Error(`daemon-reload: ${reload.stderr}`);
    return sd;
  } catch (e) {
    await sd.stop();
    throw e;
  }
}

/** Environment for installers run in the sandbox: the closed registry, and the default PATH of a root shell. */
export function installEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/root",
    LANG: "C.UTF-8",
    npm_config_registry: CLOSED_REGISTRY,
    NPM_CONFIG_REGISTRY: CLOSED_REGISTRY,
    ...extra,
  };
}

/**
 * Runs `cmd args` in the sandbox without any network (a fresh network namespace: not even loopback is up), as a
 * root shell would. Unix sockets still work (systemctl, the agent's status socket): they are files.
 */
export function offline(sd: SystemdSandbox, cmd: string, args: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
  return sd.exec("unshare", ["--net", "--", cmd, ...args], { env: installEnv(opts.env), timeoutMs: opts.timeoutMs ?? DIST_TIMEOUT_MS });
}

/** A file's content inside the sandbox (its /var/lib, /opt and /usr are not the host's). */
export async function readInside(sd: SystemdSandbox, path: string): Promise<string> {
  const r = await sd.exec("cat", [path]);
  if (r.code !== 0) throw new Error(`cat ${path} in the sandbox: ${r.stderr}`);
  return r.stdout;
}

/** `stat -c '%a %U %G %F'` inside the sandbox, or undefined when the path does not exist there. */
export async function statInside(sd: SystemdSandbox, path: string): Promise<{ mode: string; user: string; group: string; type: string } | undefined> {
  const r = await sd.exec("stat", ["-c", "%a|%U|%G|%F", path]);
  if (r.code !== 0) return undefined;
  const [mode = "", user = "", group = "", type = ""] = r.stdout.trim().split("|");
  return { mode, user, group, type };
}

/** The file names `npm run dist` wrote, by kind. */
export async function artifactNames(dir: string): Promise<{ agentExe: string; agentTar: string; coordExe: string; coordTar: string; agentDeb: string; coordDeb: string }> {
  const names = await readdir(dir);
  const one = (re: RegExp): string => {
    const hit = names.filter((n) => re.test(n));
    if (hit.length !== 1) throw new Error(`expected one artifact matching ${re} in ${dir}, found ${hit.join(", ") || "none"}`);
    return hit[0]!;
  };
  return {
    agentExe: one(/^lanekeeper-agent-\d.*-linux-[a-z0-9]+$/),
    agentTar: one(/^lanekeeper-agent-\d.*\.tar\.gz$/),
    coordExe: one(/^lanekeeper-\d.*-linux-[a-z0-9]+$/),
    coordTar: one(/^lanekeeper-\d.*\.tar\.gz$/),
    agentDeb: one(/^lanekeeper-agent_.*\.deb$/),
    coordDeb: one(/^lanekeeper_.*\.deb$/),
  };
}

/** SHA-256 of a host file. */
export async function sha256File(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

/** What install-coordinator.sh is given: a policy, the coordinator key and its trust file, NATS password, GitHub token. */
export interface CoordinatorInputs {
  policy: string;
  key: string;
  natsPasswordFile: string;
  githubTokenFile: string;
  natsPassword: string;
  githubToken: string;
}

/**
 * Writes the coordinator's inputs into `dir`: a policy with no hosts yet (what an operator starts with), its
 * coordinator.keyFile and auditFile in `stateDir`, the NATS login by user and password environment variable.
 */
export async function writeCoordinatorInputs(
  dir: string,
  o: { natsUrl: string; natsUser: string; natsPassword: string; githubApiUrl: string; githubWebUrl: string; githubToken: string; stateDir: string },
): Promise<CoordinatorInputs> {
  await mkdir(dir, { recursive: true });
  const coordinatorKey = generateSigningKey();
  const rootKey = generateSigningKey();
  const inputs: CoordinatorInputs = {
    policy: join(dir, "lanekeeper.yaml"),
    key: join(dir, "coordinator.key"),
    natsPasswordFile: join(dir, "nats-password"),
    githubTokenFile: join(dir, "github-token"),
    natsPassword: o.natsPassword,
    githubToken: o.githubToken,
  };
  await writeFile(
    inputs.policy,
    [
      "github:",
      `  apiUrl: ${JSON.stringify(o.githubApiUrl)}`,
      `  webUrl: ${JSON.stringify(o.githubWebUrl)}`,
      "  auth:",
      "    tokenEnv: LANEKEEPER_GITHUB_TOKEN",
      "coordinator:",
      `  keyFile: ${o.stateDir}/coordinator.key`,
      `  natsUrl: ${JSON.stringify(o.natsUrl)}`,
      `  natsUser: ${o.natsUser}`,
      "  natsPasswordEnv: LANEKEEPER_NATS_PASSWORD",
      `  auditFile: ${o.stateDir}/audit.jsonl`,
      "",
    ].join("\n"),
  );
  await writeFile(inputs.key, signingKeyToPem(coordinatorKey), { mode: 0o600 });
  await writeFile(`${inputs.key}.keyset.json`, formatTrustFile(initialKeySet(coordinatorKey, rootKey, { nowMs: Date.now() - 60_000 })));
  await writeFile(inputs.natsPasswordFile, `${o.natsPassword}\n`, { mode: 0o600 });
  await writeFile(inputs.githubTokenFile, `${o.githubToken}\n`, { mode: 0o600 });
  return inputs;
}

/** GET `path` on 127.0.0.1:`port` inside the sandbox's view (it shares the host network): status and body. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: "" };
  }
}

/** A TCP port free on 127.0.0.1 right now (the sandbox shares the host's network). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      server.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0));
    });
  });
}
