// install/install-agent.sh and uninstall-agent.sh, run as an operator would, INSIDE a real systemd (the sandbox's
// PID 1, with its own /etc, /run and /tmp, and /usr, /opt, /var/lib of its own: installer-fixture.ts), from the
// real `npm run dist` artifacts, with no network at all and npm's registry pointed at a closed port: the artifact
// checked against SHA256SUMS, `lanekeeper-agent` on the PATH, users and directories, `lanekeeper-agent init`, the
// host's settings in the config (defaults left to the agent), the hardened unit started, `lanekeeper-agent status`
// answering on the per-installation socket; a re-run upgrades in place (here from the bundle) and keeps the keys;
// the uninstaller removes unit, binary and link and, with --purge, keys and state. NATS password and keys are
// generated here and must never show up in the installer's output.
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatTrustFile, generateSigningKey, parseAgentConfig, parseEnrollmentBundle, publicKeyToPem } from "@lanekeeper/shared";
import { startNatsServer, waitUntil, type NatsServerHandle, type SystemdSandbox } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initialKeySet } from "../../packages/coordinator/src/index.js";
import { DIST_TIMEOUT_MS, artifactNames, distArtifacts, installEnv, offline, readInside, repo, startInstallSandbox, statInside } from "./installer-fixture.js";

const INSTALL = join(repo, "install/install-agent.sh");
const UNINSTALL = join(repo, "install/uninstall-agent.sh");
const HOST = "inst01";
const UNIT = "lanekeeper-agent.service";
/** The agent's default status socket for this host: one per installation. */
const SOCKET = `/run/lanekeeper/${HOST}/agent.sock`;
const INSTALL_TIMEOUT_MS = 300_000;

let sd: SystemdSandbox;
let nats: NatsServerHandle;
let dist: string;
let names: Awaited<ReturnType<typeof artifactNames>>;
let base: string;
let natsPassword: string;
let rootKeyId = "";
let paths: { passwordFile: string; trustFile: string; rootPublicKey: string; otherRootPublicKey: string; badDir: string; noSumsDir: string };

function installArgs(from: string): string[] {
  return [
    INSTALL,
    "--from",
    from,
    "--host-id",
    HOST,
    "--nats-url",
    nats.url,
    "--nats-user",
    `agent-${HOST}`,
    "--nats-password-file",
    paths.passwordFile,
    "--trust-file",
    paths.trustFile,
    "--root-public-key",
    paths.rootPublicKey,
    // An air-gapped host's mirror (docs/agent.md section 4a): the installer writes it into agent.yaml.
    "--runner-mirror-url",
    MIRROR_URL,
  ];
}

const MIRROR_URL = "https://mirror.example/runners/";

/** `lanekeeper-agent …` by its bare name, as an operator's root shell runs it. */
function agentCli(...args: string[]) {
  return sd.exec("lanekeeper-agent", args, { env: installEnv(), timeoutMs: 60_000 });
}

async function agentStatus(): Promise<Record<string, unknown> | undefined> {
  const r = await agentCli("status", "--json");
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function expectNoSecrets(text: string): void {
  expect(text).not.toContain(natsPassword);
  expect(text).not.toContain("PRIVATE KEY");
}

beforeAll(async () => {
  natsPassword = randomBytes(24).toString("base64url");
  nats = await startNatsServer({
    users: { agents: [{ hostId: HOST, user: `agent-${HOST}`, password: natsPassword }], coordinator: { user: "coordinator", password: randomBytes(24).toString("base64url") } },
  });
  dist = await distArtifacts();
  names = await artifactNames(dist);
  sd = await startInstallSandbox();
  // Inputs live in the sandbox directory: the same path inside and outside.
  base = join(sd.root, "install-test");
  paths = {
    passwordFile: join(base, "nats-password"),
    trustFile: join(base, "trust.json"),
    rootPublicKey: join(base, "root.pub"),
    otherRootPublicKey: join(base, "other-root.pub"),
    badDir: join(base, "tampered"),
    noSumsDir: join(base, "no-sums"),
  };
  await mkdir(base, { recursive: true });
  await writeFile(paths.passwordFile, `${natsPassword}\n`, { mode: 0o600 });
  const coordinatorKey = generateSigningKey();
  const rootKey = generateSigningKey();
  rootKeyId = rootKey.keyId;
  await writeFile(paths.trustFile, formatTrustFile(initialKeySet(coordinatorKey, rootKey, { nowMs: Date.now() - 60_000 })));
  await writeFile(paths.rootPublicKey, publicKeyToPem(rootKey.publicKey, "ed25519"));
  await writeFile(paths.otherRootPublicKey, publicKeyToPem(generateSigningKey().publicKey, "ed25519"));
  // A copy of the single executable with one byte changed, beside the real SHA256SUMS; and one without sums.
  await mkdir(paths.badDir);
  await copyFile(join(dist, "SHA256SUMS"), join(paths.badDir, "SHA256SUMS"));
  await writeFile(join(paths.badDir, names.agentTar), Buffer.concat([await readFile(join(dist, names.agentTar)), Buffer.from([0])]));
  await mkdir(paths.noSumsDir);
  await copyFile(join(dist, names.agentTar), join(paths.noSumsDir, names.agentTar));
}, DIST_TIMEOUT_MS);

afterAll(async () => {
  await sd?.stop();
  await nats?.stop();
});

describe("install-agent.sh from the release artifacts, in a real systemd", () => {
  it("refuses bad options and unchecked artifacts before touching anything", async () => {
    const run = (...args: string[]) => offline(sd, "bash", [INSTALL, ...args], { timeoutMs: 60_000 });
    const noValue = await run("--from", dist, "--host-id");
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toContain("--host-id needs a value");
    expect(noValue.stderr).not.toContain("unbound variable");
    const noFrom = await run("--host-id", HOST);
    expect(noFrom.code).toBe(2);
    expect(noFrom.stderr).toContain("--from <dist-dir|artifact> is required");
    const badHost = await run("--from", dist, "--host-id", "Build_01");
    expect(badHost.code).toBe(1);
    expect(badHost.stderr).toContain("--host-id must match");
    const laneInState = await run("--from", dist, "--host-id", HOST, "--state-dir", "/srv/lk", "--lane-root", "/srv/lk/lanes");
    expect(laneInState.code).toBe(1);
    expect(laneInState.stderr).toContain("must not be inside --state-dir");
    const userWithoutPassword = await run("--from", dist, "--host-id", HOST, "--nats-user", "x");
    expect(userWithoutPassword.code).toBe(1);
    expect(userWithoutPassword.stderr).toContain("--nats-user needs --nats-password-file");
    expect((await run("--from", dist, "--host-id", HOST, "--bogus", "x")).code).toBe(2);
    // Artifacts: a damaged one, one without SHA256SUMS beside it.
    const tampered = await run("--from", join(paths.badDir, names.agentTar), "--host-id", HOST);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain(`${names.agentTar} does not match`);
    const noSums = await run("--from", paths.noSumsDir, "--host-id", HOST);
    expect(noSums.code).toBe(1);
    expect(noSums.stderr).toContain("no SHA256SUMS beside");
    // The trust file must pin the root key brought out of band: without it, or with another root, nothing happens.
    const unpinned = await run("--from", dist, "--host-id", HOST, "--trust-file", paths.trustFile);
    expect(unpinned.code).toBe(1);
    expect(unpinned.stderr).toContain("--trust-file needs --root-public-key");
    const otherRoot = await run("--from", dist, "--host-id", HOST, "--trust-file", paths.trustFile, "--root-public-key", paths.otherRootPublicKey);
    expect(otherRoot.code).toBe(1);
    expect(otherRoot.stderr).toMatch(/the trust file pins root key\(s\) \[[0-9a-f]{64}\], not [0-9a-f]{64}/);
    expect(await statInside(sd, "/var/lib/lanekeeper")).toBeUndefined();
    expect(await statInside(sd, "/opt/lanekeeper")).toBeUndefined();
  });

  it(
    "installs the single executable from a dist directory with no network: a running unit, lanekeeper-agent on the PATH, the agent's defaults",
    async () => {
      const r = await offline(sd, "bash", installArgs(dist), { timeoutMs: INSTALL_TIMEOUT_MS });
      const output = r.stdout + r.stderr;
      expect(r.code, output).toBe(0);
      expect(r.stdout).toContain(`${names.agentExe} matches ${dist}/SHA256SUMS`);
      expect(r.stdout).toContain(`lanekeeper-agent is installed on ${HOST}`);
      expect(r.stdout).toContain(`root key ${rootKeyId} pinned by the trust file`);
      // The next steps use the bare name.
      expect(r.stdout).toContain("4. Check: lanekeeper-agent status\n");
      expect(r.stdout).not.toMatch(/node_modules|\bnode\b \//);
      expectNoSecrets(output);

      // The unit: active, running the installed single executable, hardened.
      expect((await sd.systemctl("is-active", UNIT)).stdout.trim()).toBe("active");
      expect((await sd.systemctl("is-enabled", UNIT)).stdout.trim()).toBe("enabled");
      const props = await sd.unitProperties(UNIT, ["ExecStart", "ProtectSystem", "NoNewPrivileges", "ReadWritePaths"]);
      expect(props.ExecStart).toContain("path=/opt/lanekeeper/bin/lanekeeper-agent");
      expect(props.ExecStart).toContain("/etc/lanekeeper/agent.yaml");
      expect(props.ProtectSystem).toBe("strict");
      expect(props.NoNewPrivileges).toBe("yes");
      expect(props.ReadWritePaths).toContain("/var/lib/lanekeeper");
      expect((await readInside(sd, "/opt/lanekeeper/bin/lanekeeper-agent")).length).toBeGreaterThan(1_000_000);
      expect((await sd.exec("readlink", ["/usr/local/bin/lanekeeper-agent"])).stdout.trim()).toBe("/opt/lanekeeper/bin/lanekeeper-agent");

      // From the PATH, by name: --version, and status through the default config's socket.
      const version = await agentCli("--version");
      expect(version.code, version.stderr).toBe(0);
      expect(version.stdout).toMatch(/\d+\.\d+\.\d+/);
      const live = await waitUntil(
        async () => {
          const s = await agentStatus();
          return s?.natsState === "connected" && Number(s?.keysetVersion) === 1 ? s : undefined;
        },
        { timeoutMs: 60_000, what: "the installed agent to connect to NATS with the trusted key set", diagnostics: async () => JSON.stringify(await agentStatus()) },
      );
      expect(live.hostId).toBe(HOST);
      expect(live.controlEnabled ?? false).toBe(false);
      expect((await statInside(sd, SOCKET))?.type).toBe("socket");

      // The config: the host's settings, validated by the agent's own parser; owner-only because of the password.
      // Status socket, runner distributions and runner user are the agent's defaults: not written, and the
      // installer created the default runner-distribution directory.
      const text = await readInside(sd, "/etc/lanekeeper/agent.yaml");
      expect(text).not.toMatch(/^(statusSocket|runnerDistPath|runAsUser):/m);
      const config = parseAgentConfig(text);
      expect(config.hostId).toBe(HOST);
      expect(config.nats).toEqual({ url: nats.url, servers: [nats.url], user: `agent-${HOST}`, password: natsPassword });
      expect(config.statusSocket).toBe(SOCKET);
      expect(config.trustFile).toBe("/etc/lanekeeper/trust.json");
      expect(config.laneRoot).toBe("/var/lib/lanekeeper-lanes");
      expect(config.control.enabled).toBe(false);
      // Runner versions: nothing to stage by hand; the agent fetches and verifies them, here from the mirror.
      expect(config.runnerDownloads.mirrorUrlPrefix).toBe(MIRROR_URL);
      expect(config.runnerDownloads.mirrorDir).toBeUndefined();
      expect(r.stdout).toContain("Runner versions are downloaded and checksum-verified by the agent: nothing to unpack by hand.");
      expect(r.stdout).not.toMatch(/unpack .*into|stage .*runner|runnerDistPath\/</i);
      expect(await statInside(sd, config.runnerDistPath)).toMatchObject({ mode: "755", user: "root", type: "directory" });
      expect((await statInside(sd, "/etc/lanekeeper/agent.yaml"))?.mode).toBe("600");
      expect((await statInside(sd, "/var/lib/lanekeeper"))?.mode).toBe("700");
      expect((await statInside(sd, "/var/lib/lanekeeper/identity.key"))?.mode).toBe("600");
      expect(await readInside(sd, "/etc/lanekeeper/trust.json")).toBe(await readFile(paths.trustFile, "utf8"));

      // The enrollment bundle: public keys only, and what the installer printed.
      const bundle = await readInside(sd, "/var/lib/lanekeeper/enrollment.yaml");
      expect(parseEnrollmentBundle(bundle)).toMatchObject({ hostId: HOST, optIn: false });
      expect(r.stdout).toContain(bundle.trim());
      expectNoSecrets(bundle);

      // The runner user (the agent's default name) and group exist in the sandbox's /etc, not the host's.
      expect((await sd.exec("id", ["-gn", config.runAsUser])).stdout.trim()).toBe("lanekeeper");
    },
    INSTALL_TIMEOUT_MS,
  );

  it(
    "re-running it with the bundle upgrades in place, keeps keys and config and restarts the agent",
    async () => {
      const keyBefore = await readInside(sd, "/var/lib/lanekeeper/identity.key");
      const configBefore = await readInside(sd, "/etc/lanekeeper/agent.yaml");
      const pidBefore = (await sd.unitProperties(UNIT, ["MainPID"])).MainPID;
      const r = await offline(sd, "bash", installArgs(join(dist, names.agentTar)), { timeoutMs: INSTALL_TIMEOUT_MS });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("exists; keeping it and the keys");
      expectNoSecrets(r.stdout + r.stderr);
      expect(await readInside(sd, "/var/lib/lanekeeper/identity.key")).toBe(keyBefore);
      expect(await readInside(sd, "/etc/lanekeeper/agent.yaml")).toBe(configBefore);
      // Now the launcher and its bundle, still behind the same link and unit.
      expect(await readInside(sd, "/opt/lanekeeper/bin/lanekeeper-agent")).toMatch(/^#!\/bin\/sh/);
      expect((await statInside(sd, "/opt/lanekeeper/lib/lanekeeper-agent.mjs"))?.type).toBe("regular file");
      expect((await sd.systemctl("is-active", UNIT)).stdout.trim()).toBe("active");
      expect((await sd.unitProperties(UNIT, ["MainPID"])).MainPID).not.toBe(pidBefore);
      expect((await agentCli("--version")).code).toBe(0);
      expect((await agentStatus())?.hostId).toBe(HOST);
    },
    INSTALL_TIMEOUT_MS,
  );

  it("uninstall-agent.sh --help prints its usage; it removes unit, binary and link, and with --purge keys and state", async () => {
    const help = await sd.exec("bash", [UNINSTALL, "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Removes lanekeeper-agent from this host");
    expect(help.stdout).toContain("--purge           also delete config, keys and state");
    expect(help.stdout).toContain("--bin-dir DIR     default /usr/local/bin");
    // Only the usage: no line of the script itself (it used to print `set -euo pipefail`).
    expect(help.stdout).not.toContain("set -euo");
    for (const script of [INSTALL, join(repo, "install/install-coordinator.sh")]) {
      const h = await sd.exec("bash", [script, "--help"]);
      expect(h.code).toBe(0);
      expect(h.stdout).toContain("Options:");
      expect(h.stdout).not.toContain("set -euo");
    }
    const r = await offline(sd, "bash", [UNINSTALL, "--purge"], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("lanekeeper-agent uninstalled");
    expect((await sd.systemctl("is-active", UNIT)).stdout.trim()).not.toBe("active");
    for (const gone of ["/etc/systemd/system/lanekeeper-agent.service", "/usr/local/bin/lanekeeper-agent", "/opt/lanekeeper/bin", "/opt/lanekeeper/lib", "/var/lib/lanekeeper", "/etc/lanekeeper"]) {
      expect(await statInside(sd, gone), gone).toBeUndefined();
    }
    // Runner distributions are not the uninstaller's to delete.
    expect(await statInside(sd, "/opt/lanekeeper/runners")).toBeDefined();
    expect((await sd.exec("lanekeeper-agent", ["--version"], { env: installEnv() })).code).not.toBe(0);
  });
});

describe("install-agent.sh and the agent config agree on their defaults", () => {
  it("the runner-distribution directory, the runner user and the status socket are the agent config's defaults", async () => {
    const help = await sd.exec("bash", [INSTALL, "--help"]);
    expect(help.code).toBe(0);
    const defaults = parseAgentConfig("hostId: h1\nnats: { url: nats://127.0.0.1:4222 }\n");
    expect(help.stdout).toContain(`(default ${defaults.runnerDistPath}, the agent's default)`);
    expect(help.stdout).toContain(`(default ${defaults.runAsUser}, the agent's default)`);
    expect(defaults.statusSocket).toBe("/run/lanekeeper/h1/agent.sock");
    expect(help.stdout).toContain("default: the agent's, /run/lanekeeper/<host-id>/agent.sock");
  });
});
