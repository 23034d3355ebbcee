/**
 * The release artifacts of `npm run dist` (scripts/dist.mjs): the tarballs run on a bare node with no
 * node_modules anywhere, the single executables run with no node on PATH at all, `sha256sum -c SHA256SUMS`
 * checks them, and a second build gives the same bytes. Builds once with `npm run dist` (into the repository's
 * dist/, as documented) and once more into a temp dir; every run happens in a copy outside the repository.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { access, copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const execFileP = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const VERSIONS = {
  lanekeeper: (JSON.parse(await readFile(join(ROOT, "packages/coordinator/package.json"), "utf8")) as { version: string }).version,
  "lanekeeper-agent": (JSON.parse(await readFile(join(ROOT, "packages/agent/package.json"), "utf8")) as { version: string }).version,
} as const;
type Cli = keyof typeof VERSIONS;
const ARCH = process.arch;
const COMMIT = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();

/** What `<cli> --version` prints: the package version and the commit the bundle baked in. */
function versionLine(cli: Cli): string {
  return `${cli} ${VERSIONS[cli]} (commit ${COMMIT})\n`;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Run> {
  try {
    const r = await execFileP(file, args, { timeout: opts.timeout ?? 60_000, cwd: opts.cwd, env: opts.env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: `${e.stderr ?? ""}${typeof e.code === "number" ? "" : e.message}` };
  }
}

/** The environment without anything that could lead node to the repository's packages. */
function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const key of ["NODE_PATH", "NODE_OPTIONS", "LANEKEEPER_POLICY", "LANEKEEPER_NODE", "LANEKEEPER_COMMIT"]) delete env[key];
  return env;
}

/** PATH with every directory holding a `node` removed. */
async function pathWithoutNode(): Promise<string> {
  const dirs: string[] = [];
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const hasNode = await access(join(dir, "node")).then(
      () => true,
      () => false,
    );
    if (!hasNode && dir !== "") dirs.push(dir);
  }
  return dirs.join(delimiter);
}

/** A TCP port on loopback that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const { port } = server.address() as { port: number };
  await new Promise<void>((res) => server.close(() => res()));
  return port;
}

/** A minimal valid policy in `dir` whose NATS is a closed port; returns its path. */
async function writePolicy(dir: string): Promise<string> {
  const policy = join(dir, "lanekeeper.yaml");
  await writeFile(
    policy,
    [
      "github:",
      "  auth:",
      "    tokenEnv: LK_GITHUB_TOKEN",
      "coordinator:",
      `  keyFile: ${join(dir, "coordinator.key")}`,
      `  natsUrl: nats://127.0.0.1:${await closedPort()}`,
      "  natsUser: coordinator",
      "  natsPasswordEnv: LK_NATS_PASSWORD",
      `  auditFile: ${join(dir, "audit.jsonl")}`,
      "hosts: {}",
      "scopes: {}",
      "pools: {}",
      "lanes: []",
      "",
    ].join("\n"),
  );
  return policy;
}

/** `lanekeeper keys root-init` and `keys generate` for the policy in `dir`; returns the agents' trust file. */
async function makeKeys(lk: string, dir: string, policy: string, env: NodeJS.ProcessEnv): Promise<string> {
  const rootInit = await run(lk, ["keys", "root-init", "--out", join(dir, "root.key")], { env, cwd: dir });
  expect(rootInit.code, rootInit.stderr).toBe(0);
  const gen = await run(lk, ["keys", "generate", "--policy", policy, "--root-public-key", join(dir, "root.key.pub")], { env, cwd: dir });
  expect(gen.code, gen.stderr).toBe(0);
  return join(dir, "coordinator.key.keyset.json");
}

const NO_CRASH = /^\s+at /m; // a stack trace means the CLI crashed instead of reporting an error

/** The artifacts scripts/dist.mjs makes (`npm run dist` adds the Debian packages of scripts/dist-deb.mjs). */
const ARTIFACTS = [
  `lanekeeper-${VERSIONS.lanekeeper}-linux-${ARCH}`,
  `lanekeeper-${VERSIONS.lanekeeper}.tar.gz`,
  `lanekeeper-agent-${VERSIONS["lanekeeper-agent"]}-linux-${ARCH}`,
  `lanekeeper-agent-${VERSIONS["lanekeeper-agent"]}.tar.gz`,
].sort();

/** SHA256SUMS lines by file name. */
function parseSums(text: string): Map<string, string> {
  const lines = text.trim().split("\n");
  for (const line of lines) expect(line).toMatch(/^[0-9a-f]{64} {2}\S+$/);
  return new Map(lines.map((l) => [l.slice(66), l]));
}

let work = ""; // everything the tests make, outside the repository
let copy = ""; // this script's artifacts copied out of the repository's dist/
let firstSums = new Map<string, string>();

beforeAll(async () => {
  const built = await run("npm", ["run", "dist"], { cwd: ROOT, env: bareEnv(), timeout: 300_000 });
  expect(built.code, built.stderr).toBe(0);
  firstSums = parseSums(await readFile(join(ROOT, "dist/SHA256SUMS"), "utf8"));
  work = await mkdtemp(join(tmpdir(), "lk-dist-"));
  // Nothing above the copy may hold a node_modules that node could fall back on.
  for (let dir = work; dir !== dirname(dir); dir = dirname(dir)) {
    const found = await access(join(dir, "node_modules")).then(
      () => true,
      () => false,
    );
    expect(found, `${dir}/node_modules exists`).toBe(false);
  }
  copy = join(work, "artifacts");
  await mkdir(copy);
  for (const name of ARTIFACTS) await copyFile(join(ROOT, "dist", name), join(copy, name));
  await writeFile(join(copy, "SHA256SUMS"), ARTIFACTS.map((n) => `${firstSums.get(n)}\n`).join(""));
}, 300_000);

afterAll(async () => {
  if (work !== "") await rm(work, { recursive: true, force: true });
});

describe("npm run dist", () => {
  it("writes both tarballs and both single executables, and SHA256SUMS over them, which sha256sum -c accepts", async () => {
    expect([...firstSums.keys()]).toEqual([...firstSums.keys()].sort());
    expect([...firstSums.keys()]).toEqual(expect.arrayContaining(ARTIFACTS));
    for (const where of [join(ROOT, "dist"), copy]) {
      const check = await run("sha256sum", ["-c", "SHA256SUMS"], { cwd: where });
      expect(check.code, check.stdout + check.stderr).toBe(0);
      for (const name of ARTIFACTS) expect(check.stdout.split("\n")).toContain(`${name}: OK`);
    }
  });

  it("gives the same bytes on a second build", async () => {
    const out = join(work, "second-build");
    const built = await run(process.execPath, [join(ROOT, "scripts/dist.mjs"), "--out", out], { env: bareEnv(), timeout: 300_000 });
    expect(built.code, built.stderr).toBe(0);
    const second = parseSums(await readFile(join(out, "SHA256SUMS"), "utf8"));
    expect([...second.keys()]).toEqual(ARTIFACTS);
    expect(ARTIFACTS.map((n) => second.get(n))).toEqual(ARTIFACTS.map((n) => firstSums.get(n)));
  }, 300_000);
});

describe.each(["lanekeeper", "lanekeeper-agent"] as const)("%s tarball", (cli: Cli) => {
  let prefix = "";
  beforeAll(async () => {
    prefix = join(work, `${cli}-tarball`);
    await mkdir(prefix);
    const x = await run("tar", ["xzf", join(copy, `${cli}-${VERSIONS[cli]}.tar.gz`), "-C", prefix]);
    expect(x.code, x.stderr).toBe(0);
  });

  it("holds bin/<cli> and lib/<cli>.mjs only, owned by 0:0, with one fixed mtime", async () => {
    const listing = await run("tar", ["tzvf", join(copy, `${cli}-${VERSIONS[cli]}.tar.gz`), "--numeric-owner"]);
    expect(listing.code, listing.stderr).toBe(0);
    const rows = listing.stdout.trim().split("\n").map((l) => l.split(/\s+/));
    expect(rows.map((r) => r[5])).toEqual(["bin/", `bin/${cli}`, "lib/", `lib/${cli}.mjs`]);
    expect(rows.map((r) => r[0])).toEqual(["drwxr-xr-x", "-rwxr-xr-x", "drwxr-xr-x", "-rw-r--r--"]);
    expect(new Set(rows.map((r) => r[1]))).toEqual(new Set(["0/0"]));
    expect(new Set(rows.map((r) => `${r[3]} ${r[4]}`)).size).toBe(1);
  });

  it("starts through a symlink, as a package would link it into /usr/bin", async () => {
    const link = join(work, `${cli}-link`);
    await symlink(join(prefix, "bin", cli), link);
    const r = await run(link, ["--help"], { env: bareEnv(), cwd: work });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Usage: ${cli} `);
  });

  it("says how to get node when there is none on PATH", async () => {
    const r = await run(join(prefix, "bin", cli), ["--version"], { env: bareEnv({ PATH: await pathWithoutNode() }), cwd: work });
    expect(r.code).toBe(127);
    expect(r.stderr).toContain("cannot find node");
    expect(r.stderr).toContain("single executable");
  });
});

/** How each form of a CLI is started: the tarball's launcher with node on PATH, or the SEA with no node. */
const FORMS = [
  { form: "tarball", bin: (cli: Cli) => join(work, `${cli}-tarball`, "bin", cli), env: () => Promise.resolve(bareEnv()) },
  { form: "single executable", bin: (cli: Cli) => join(copy, `${cli}-${VERSIONS[cli]}-linux-${ARCH}`), env: async () => bareEnv({ PATH: await pathWithoutNode() }) },
] as const;

describe.each(FORMS)("the $form", ({ form, bin, env }) => {
  let dir = "";
  beforeAll(async () => {
    dir = join(work, form.replace(/ /g, "-"));
    await mkdir(dir);
    if (form === "single executable") {
      // The premise: nothing called node can be found on this PATH.
      const found = await run("/bin/sh", ["-c", "command -v node"], { env: await env() });
      expect(found.code, found.stdout).not.toBe(0);
    }
  });

  it.each(["lanekeeper", "lanekeeper-agent"] as const)("%s --version prints the version and the commit", async (cli) => {
    const r = await run(bin(cli), ["--version"], { env: await env(), cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(versionLine(cli));
    expect(r.stderr).toBe(""); // no warning of any kind (a SEA warns that it is experimental unless told not to)
  });

  it("lanekeeper-agent init writes a config and keys and prints the enrollment bundle; status then reports that no agent answers", async () => {
    const hostId = `dist-${form === "tarball" ? "tar" : "sea"}-${process.pid}`;
    const config = join(dir, "etc/agent.yaml");
    const init = await run(bin("lanekeeper-agent"), ["init", "--host-id", hostId, "--config", config, "--state-dir", join(dir, "state")], { env: await env(), cwd: dir });
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`hostId: ${hostId}`);
    expect(init.stdout).toMatch(/identityKey: \S+/);
    expect(await readFile(config, "utf8")).toContain(`hostId: ${hostId}`);
    expect(await readdir(join(dir, "state"))).not.toEqual([]);

    const status = await run(bin("lanekeeper-agent"), ["status", "--config", config, "--socket", join(dir, "no-agent.sock")], { env: await env(), cwd: dir });
    expect(status.code, status.stderr).toBe(5);
    expect(status.stderr).toMatch(/^error: no agent answers on .*\(STATUS_UNAVAILABLE\)\nhint: /);
    expect(status.stderr).not.toMatch(NO_CRASH);
  });

  it("lanekeeper keys and status: keys are made, and status with NATS down is a clear error", async () => {
    const lk = bin("lanekeeper");
    const policy = await writePolicy(dir);
    await makeKeys(lk, dir, policy, await env());

    const status = await run(lk, ["status", "--policy", policy, "--timeout", "10s"], {
      env: await env().then((e) => ({ ...e, LK_GITHUB_TOKEN: "unused", LK_NATS_PASSWORD: "unused" })),
      cwd: dir,
    });
    expect(status.code, status.stderr).toBe(9);
    // Retries are logged as they happen (a cluster may be electing leaders); the last lines say what failed and why.
    expect(status.stderr).toMatch(/^warn: NATS not answering yet; retrying .*CONNECTION_REFUSED/);
    expect(status.stderr).toMatch(/^error: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: no answer after \d+ attempt\(s\) .*\(NATS_UNAVAILABLE\)\nhint: [^\n]+\n$/m);
    expect(status.stderr).not.toMatch(NO_CRASH);
  });

  it("lanekeeper-agent run (observe-only, NATS down) serves status on its socket and stops on SIGTERM", async () => {
    const sub = join(dir, "daemon");
    await mkdir(sub);
    const agent = bin("lanekeeper-agent");
    const hostId = `dist-run-${form === "tarball" ? "tar" : "sea"}-${process.pid}`;
    const config = join(sub, "agent.yaml");
    const init = await run(agent, ["init", "--host-id", hostId, "--config", config, "--state-dir", join(sub, "state")], { env: await env(), cwd: sub });
    expect(init.code, init.stderr).toBe(0);
    const trust = await makeKeys(bin("lanekeeper"), sub, await writePolicy(sub), await env());
    await copyFile(trust, join(sub, "state/trust.json"));
    const socket = join(sub, "agent.sock");
    const written = await readFile(config, "utf8");
    const natsUrl = `nats://127.0.0.1:${await closedPort()}`;
    await writeFile(config, `statusSocket: ${socket}\n${written.replace(/^(\s*url:\s*).*$/m, `$1${natsUrl}`)}`);

    const daemon = spawn(agent, ["run", "--config", config], { env: await env(), cwd: sub, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    daemon.stdout.on("data", (d: Buffer) => (log += d.toString()));
    daemon.stderr.on("data", (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((res) => daemon.on("exit", (code) => res(code)));
    try {
      let status: Run = { code: -1, stdout: "", stderr: "" };
      for (let i = 0; i < 60 && status.code !== 0; i++) {
        status = await run(agent, ["status", "--config", config, "--json"], { env: await env(), cwd: sub });
        if (status.code !== 0) await new Promise((r) => setTimeout(r, 250));
      }
      expect(status.code, `${status.stderr}\n${log}`).toBe(0);
      const body = JSON.parse(status.stdout) as { hostId: string; agentVersion: string; natsState: string; keysetVersion: number };
      expect(body).toMatchObject({ hostId, agentVersion: VERSIONS["lanekeeper-agent"] });
    } finally {
      daemon.kill("SIGTERM");
    }
    expect(await exited, log).toBe(0);
    expect(log).toContain('"msg":"agent stopped"');
    expect(log).not.toMatch(NO_CRASH);
  });
});
