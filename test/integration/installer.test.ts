// install/install-agent.sh and uninstall-agent.sh, run as an operator would, INSIDE a real systemd (the sandbox's
// PID 1, with its own /etc, /run and /tmp): users and directories, the agent packed from this repository and
// installed with npm into --prefix, `lanekeeper-agent init`, the host's settings written into the config and
// validated, the hardened unit started, `lanekeeper-agent status` answering on its socket; a re-run keeps the
// keys; the uninstaller removes unit and install and, with --purge, keys and state. NATS password and keys are
// generated here and must never show up in the installer's output.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatTrustFile, generateSigningKey, parseAgentConfig, parseEnrollmentBundle, publicKeyToPem } from "@lanekeeper/shared";
import { startNatsServer, startSystemdSandbox, waitUntil, type NatsServerHandle, type SystemdSandbox } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initialKeySet } from "../../packages/coordinator/src/index.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const INSTALL = join(repo, "install/install-agent.sh");
const UNINSTALL = join(repo, "install/uninstall-agent.sh");
const HOST = "inst01";
const UNIT = "lanekeeper-agent.service";
const SOCKET = "/run/lanekeeper/agent.sock";
/** npm pack + npm install of the agent and its dependencies, on a loaded 2-core machine. */
const INSTALL_TIMEOUT_MS = 600_000;

let sd: SystemdSandbox;
let nats: NatsServerHandle;
let base: string;
let natsPassword: string;
let paths: {
  prefix: string;
  configDir: string;
  stateDir: string;
  laneRoot: string;
  runnerDist: string;
  passwordFile: string;
  trustFile: string;
  rootPublicKey: string;
  otherRootPublicKey: string;
};
let firstOutput = "";
let rootKeyId = "";

function installArgs(): string[] {
  return [
    INSTALL,
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
    "--prefix",
    paths.prefix,
    "--config-dir",
    paths.configDir,
    "--state-dir",
    paths.stateDir,
    "--unit-dir",
    sd.unitDir,
    "--runner-dist",
    paths.runnerDist,
  ];
}

async function agentStatus(): Promise<{ code: number | null; json: Record<string, unknown> | undefined; stderr: string }> {
  const r = await sd.exec(process.execPath, [join(paths.prefix, "node_modules/@lanekeeper/agent/bin/lanekeeper-agent.js"), "status", "--socket", SOCKET, "--json"], {
    timeoutMs: 60_000,
  });
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { code: r.code, json, stderr: r.stderr };
}

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
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
  sd = await startSystemdSandbox();
  // Everything the installer writes lives under the sandbox root: the same path inside and outside.
  base = join(sd.root, "install-test");
  paths = {
    prefix: join(base, "opt/lanekeeper"),
    configDir: join(base, "etc/lanekeeper"),
    stateDir: join(base, "var/lib/lanekeeper"),
    laneRoot: join(base, "var/lib/lanekeeper-lanes"),
    runnerDist: join(base, "opt/lanekeeper-runners"),
    passwordFile: join(base, "nats-password"),
    trustFile: join(base, "trust.json"),
    rootPublicKey: join(base, "root.pub"),
    otherRootPublicKey: join(base, "other-root.pub"),
  };
  await mkdir(base, { recursive: true });
  await writeFile(paths.passwordFile, `${natsPassword}\n`, { mode: 0o600 });
  const coordinatorKey = generateSigningKey();
  const rootKey = generateSigningKey();
  rootKeyId = rootKey.keyId;
  await writeFile(paths.trustFile, formatTrustFile(initialKeySet(coordinatorKey, rootKey, { nowMs: Date.now() - 60_000 })));
  await writeFile(paths.rootPublicKey, publicKeyToPem(rootKey.publicKey, "ed25519"));
  await writeFile(paths.otherRootPublicKey, publicKeyToPem(generateSigningKey().publicKey, "ed25519"));
}, INSTALL_TIMEOUT_MS);

afterAll(async () => {
  await sd?.stop();
  await nats?.stop();
});

describe("install-agent.sh in a real systemd", () => {
  it("refuses bad options before touching anything", async () => {
    const badHost = await sd.exec("bash", [INSTALL, "--host-id", "Build_01"]);
    expect(badHost.code).toBe(1);
    expect(badHost.stderr).toContain("--host-id must match");
    const laneInState = await sd.exec("bash", [INSTALL, "--host-id", HOST, "--state-dir", "/srv/lk", "--lane-root", "/srv/lk/lanes"]);
    expect(laneInState.code).toBe(1);
    expect(laneInState.stderr).toContain("must not be inside --state-dir");
    const userWithoutPassword = await sd.exec("bash", [INSTALL, "--host-id", HOST, "--nats-user", "x"]);
    expect(userWithoutPassword.code).toBe(1);
    expect(userWithoutPassword.stderr).toContain("--nats-user needs --nats-password-file");
    const unknown = await sd.exec("bash", [INSTALL, "--host-id", HOST, "--bogus"]);
    expect(unknown.code).toBe(2);
    // The trust file must pin the root key brought out of band: without it, or with another root, nothing happens.
    const unpinned = await sd.exec("bash", [INSTALL, "--host-id", HOST, "--state-dir", paths.stateDir, "--trust-file", paths.trustFile]);
    expect(unpinned.code).toBe(1);
    expect(unpinned.stderr).toContain("--trust-file needs --root-public-key");
    const otherRoot = await sd.exec("bash", [INSTALL, "--host-id", HOST, "--state-dir", paths.stateDir, "--trust-file", paths.trustFile, "--root-public-key", paths.otherRootPublicKey]);
    expect(otherRoot.code).toBe(1);
    expect(otherRoot.stderr).toMatch(/the trust file pins root key\(s\) \[[0-9a-f]{64}\], not [0-9a-f]{64}/);
    await expect(stat(paths.stateDir)).rejects.toThrow();
  });

  it(
    "installs the agent as a running unit whose status answers on its socket, with the host's settings and private keys",
    async () => {
      const r = await sd.exec("bash", installArgs(), { timeoutMs: INSTALL_TIMEOUT_MS });
      firstOutput = r.stdout + r.stderr;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`lanekeeper-agent is installed on ${HOST}`);
      expect(r.stdout).toContain("Enrollment bundle");
      expect(r.stdout).toContain(`root key ${rootKeyId} pinned by the trust file`);
      expectNoSecrets(firstOutput);

      // The unit: active, running the installed agent (not the repository's), hardened.
      expect((await sd.systemctl("is-active", UNIT)).stdout.trim()).toBe("active");
      expect((await sd.systemctl("is-enabled", UNIT)).stdout.trim()).toBe("enabled");
      const props = await sd.unitProperties(UNIT, ["ExecStart", "ProtectSystem", "NoNewPrivileges", "ReadWritePaths"]);
      expect(props.ExecStart).toContain(join(paths.prefix, "node_modules/@lanekeeper/agent/bin/lanekeeper-agent.js"));
      expect(props.ExecStart).toContain(join(paths.configDir, "agent.yaml"));
      expect(props.ProtectSystem).toBe("strict");
      expect(props.NoNewPrivileges).toBe("yes");
      expect(props.ReadWritePaths).toContain(paths.stateDir);
      expect(props.ReadWritePaths).toContain(sd.unitDir);

      // status over the socket, inside the sandbox (its /run is private).
      const st = await agentStatus();
      expect(st.code, st.stderr).toBe(0);
      expect(st.json?.hostId).toBe(HOST);
      expect(st.json?.controlEnabled ?? false).toBe(false);
      // The NATS login and the trust file the installer wrote work: the agent is connected with its own user and
      // trusts the coordinator's key set (version 1).
      const live = await waitUntil(
        async () => {
          const s2 = await agentStatus();
          return s2.json?.natsState === "connected" && Number(s2.json?.keysetVersion) === 1 ? s2.json : undefined;
        },
        { timeoutMs: 60_000, what: "the installed agent to connect to NATS with the trusted key set", diagnostics: async () => JSON.stringify((await agentStatus()).json) },
      );
      expect(live.hostId).toBe(HOST);

      // The config: the host's settings, validated by the agent's own parser; owner-only because of the password.
      const config = parseAgentConfig(await readFile(join(paths.configDir, "agent.yaml"), "utf8"));
      expect(config.hostId).toBe(HOST);
      expect(config.nats).toEqual({ url: nats.url, user: `agent-${HOST}`, password: natsPassword });
      expect(config.unitDir).toBe(sd.unitDir);
      expect(config.laneRoot).toBe(paths.laneRoot);
      expect(config.runnerDistPath).toBe(paths.runnerDist);
      expect(config.runAsUser).toBe("lk-runner");
      expect(config.statusSocket).toBe(SOCKET);
      expect(config.trustFile).toBe(join(paths.configDir, "trust.json"));
      expect(config.control.enabled).toBe(false);
      expect((await stat(join(paths.configDir, "agent.yaml"))).mode & 0o777).toBe(0o600);
      expect((await stat(paths.stateDir)).mode & 0o777).toBe(0o700);
      expect((await stat(join(paths.stateDir, "identity.key"))).mode & 0o777).toBe(0o600);
      expect((await stat(join(paths.stateDir, "sealing.key"))).mode & 0o777).toBe(0o600);
      expect(await readFile(join(paths.configDir, "trust.json"), "utf8")).toBe(await readFile(paths.trustFile, "utf8"));

      // The enrollment bundle: public keys only, and what the installer printed.
      const bundle = await readFile(join(paths.stateDir, "enrollment.yaml"), "utf8");
      expect(parseEnrollmentBundle(bundle)).toMatchObject({ hostId: HOST, optIn: false });
      expect(r.stdout).toContain(bundle.trim());
      expectNoSecrets(bundle);

      // The runner user and group exist in the sandbox's /etc, not the host's.
      expect((await sd.exec("id", ["-gn", "lk-runner"])).stdout.trim()).toBe("lanekeeper");
      expect((await sd.exec("getent", ["group", "lanekeeper"])).code).toBe(0);
    },
    INSTALL_TIMEOUT_MS,
  );

  it(
    "re-running keeps keys and config and restarts the agent",
    async () => {
      const keyBefore = await sha256(join(paths.stateDir, "identity.key"));
      const configBefore = await sha256(join(paths.configDir, "agent.yaml"));
      const pidBefore = (await sd.unitProperties(UNIT, ["MainPID"])).MainPID;
      const r = await sd.exec("bash", installArgs(), { timeoutMs: INSTALL_TIMEOUT_MS });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("exists; keeping it and the keys");
      expectNoSecrets(r.stdout + r.stderr);
      expect(await sha256(join(paths.stateDir, "identity.key"))).toBe(keyBefore);
      expect(await sha256(join(paths.configDir, "agent.yaml"))).toBe(configBefore);
      expect((await sd.systemctl("is-active", UNIT)).stdout.trim()).toBe("active");
      expect((await sd.unitProperties(UNIT, ["MainPID"])).MainPID).not.toBe(pidBefore);
      expect((await agentStatus()).json?.hostId).toBe(HOST);
    },
    INSTALL_TIMEOUT_MS,
  );

  it("uninstall-agent.sh stops and removes the unit and the install; --purge removes keys and state", async () => {
    const r = await sd.exec("bash", [UNINSTALL, "--prefix", paths.prefix, "--config-dir", paths.configDir, "--state-dir", paths.stateDir, "--unit-dir", sd.unitDir, "--purge"], {
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("lanekeeper-agent uninstalled");
    expect((await sd.systemctl("is-active", UNIT)).stdout.trim()).not.toBe("active");
    await expect(stat(join(sd.unitDir, UNIT))).rejects.toThrow();
    await expect(stat(paths.prefix)).rejects.toThrow();
    await expect(stat(paths.stateDir)).rejects.toThrow();
    await expect(stat(paths.configDir)).rejects.toThrow();
    // Nothing answers on the socket any more.
    const st = await sd.exec(process.execPath, [join(repo, "packages/agent/bin/lanekeeper-agent.js"), "status", "--socket", SOCKET], { timeoutMs: 60_000 });
    expect(st.code).not.toBe(0);
  });
});
