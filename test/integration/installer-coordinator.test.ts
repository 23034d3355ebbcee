// install/install-coordinator.sh, run as an operator would, inside a real systemd (installer-fixture.ts), from the
// real `npm run dist` artifacts with no network: `lanekeeper` on the PATH, the system user, the policy, key, NATS
// password and GitHub token in place (secrets only in the root-only environment file), the hardened
// `lanekeeper serve` unit running, leading and serving metrics; a re-run with the bundle upgrades in place and
// keeps the key. NATS and the GitHub emulator run on the host.
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { startGitHubEmulator, startNatsServer, waitUntil, type GitHubEmulator, type NatsServerHandle, type SystemdSandbox } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DIST_TIMEOUT_MS,
  artifactNames,
  distArtifacts,
  freePort,
  httpGet,
  installEnv,
  offline,
  readInside,
  repo,
  startInstallSandbox,
  statInside,
  writeCoordinatorInputs,
  type CoordinatorInputs,
} from "./installer-fixture.js";

const INSTALL = join(repo, "install/install-coordinator.sh");
const UNIT = "lanekeeper.service";
const STATE = "/var/lib/lanekeeper-coordinator";
const INSTALL_TIMEOUT_MS = 300_000;

let sd: SystemdSandbox;
let nats: NatsServerHandle;
let gh: GitHubEmulator;
let dist: string;
let names: Awaited<ReturnType<typeof artifactNames>>;
let inputs: CoordinatorInputs;
let port = 0;

beforeAll(async () => {
  const natsPassword = randomBytes(24).toString("base64url");
  nats = await startNatsServer({ users: { agents: [], coordinator: { user: "coordinator", password: natsPassword } } });
  gh = await startGitHubEmulator();
  dist = await distArtifacts();
  names = await artifactNames(dist);
  sd = await startInstallSandbox();
  inputs = await writeCoordinatorInputs(join(sd.root, "coordinator-inputs"), {
    natsUrl: nats.url,
    natsUser: "coordinator",
    natsPassword,
    githubApiUrl: gh.apiUrl,
    githubWebUrl: gh.url,
    githubToken: gh.token,
    stateDir: STATE,
  });
  port = await freePort();
}, DIST_TIMEOUT_MS);

afterAll(async () => {
  await sd?.stop();
  await gh?.stop();
  await nats?.stop();
});

function installArgs(from: string): string[] {
  return [
    INSTALL,
    "--from",
    from,
    "--policy",
    inputs.policy,
    "--key",
    inputs.key,
    "--nats-password-file",
    inputs.natsPasswordFile,
    "--github-token-file",
    inputs.githubTokenFile,
    "--metrics-port",
    String(port),
  ];
}

describe("install-coordinator.sh from the release artifacts, in a real systemd", () => {
  it("refuses a policy whose audit file the service could not write, and a missing key, before touching anything", async () => {
    const elsewhere = join(sd.root, "coordinator-inputs", "elsewhere.yaml");
    await writeFile(elsewhere, (await readInside(sd, inputs.policy)).replace(`${STATE}/audit.jsonl`, "/var/lib/lanekeeper/audit.jsonl"));
    const audit = await offline(sd, "bash", [INSTALL, "--from", dist, "--policy", elsewhere, "--key", inputs.key], { timeoutMs: 60_000 });
    expect(audit.code).toBe(1);
    expect(audit.stderr).toContain(`must be inside ${STATE}`);
    const noKey = await offline(sd, "bash", [INSTALL, "--from", dist, "--policy", inputs.policy], { timeoutMs: 60_000 });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain(`no coordinator key at ${STATE}/coordinator.key`);
    const noValue = await offline(sd, "bash", [INSTALL, "--from", dist, "--policy"], { timeoutMs: 60_000 });
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toContain("--policy needs a value");
    expect(await statInside(sd, STATE)).toBeUndefined();
  });

  it(
    "installs lanekeeper serve as a running, hardened unit with its key, policy and logins; lanekeeper on the PATH",
    async () => {
      // As docs/coordinator.md has it: install without a key and without starting, make the keys with the
      // installed lanekeeper, run the installer again.
      const first = await offline(sd, "bash", [...installArgs(dist).filter((a) => a !== "--key" && a !== inputs.key), "--no-start"], { timeoutMs: INSTALL_TIMEOUT_MS });
      expect(first.code, first.stdout + first.stderr).toBe(0);
      expect((await sd.systemctl("is-active", UNIT)).stdout.trim()).not.toBe("active");
      const rootKey = join(sd.root, "offline", "lanekeeper-root.key");
      await mkdir(dirname(rootKey), { recursive: true });
      const rootInit = await sd.exec("lanekeeper", ["keys", "root-init", "--out", rootKey], { env: installEnv() });
      expect(rootInit.code, rootInit.stderr).toBe(0);
      const generate = await sd.exec("lanekeeper", ["keys", "generate", "--policy", "/etc/lanekeeper-coordinator/lanekeeper.yaml", "--root-public-key", `${rootKey}.pub`], { env: installEnv() });
      expect(generate.code, generate.stderr).toBe(0);
      const r = await offline(sd, "bash", [INSTALL, "--from", dist], { timeoutMs: INSTALL_TIMEOUT_MS });
      const output = r.stdout + r.stderr + first.stdout + first.stderr;
      expect(r.code, output).toBe(0);
      expect(r.stdout).toContain(`${names.coordExe} matches ${dist}/SHA256SUMS`);
      expect(first.stdout).toContain("lanekeeper serve is installed as lanekeeper.service");
      expect(output).not.toContain(inputs.natsPassword);
      expect(output).not.toContain(inputs.githubToken);

      expect((await sd.systemctl("is-active", UNIT)).stdout.trim()).toBe("active");
      expect((await sd.systemctl("is-enabled", UNIT)).stdout.trim()).toBe("enabled");
      const props = await sd.unitProperties(UNIT, ["ExecStart", "User", "ProtectSystem", "NoNewPrivileges", "CapabilityBoundingSet", "ReadWritePaths"]);
      expect(props.ExecStart).toContain("path=/opt/lanekeeper/bin/lanekeeper");
      expect(props.ExecStart).toContain("--policy /etc/lanekeeper-coordinator/lanekeeper.yaml");
      expect(props.User).toBe("lk-coordinator");
      expect(props.ProtectSystem).toBe("strict");
      expect(props.NoNewPrivileges).toBe("yes");
      expect(props.CapabilityBoundingSet).toBe("");
      expect(props.ReadWritePaths).toBe(STATE);

      // Files in place with their owners and modes; the secrets only in the root-only environment file.
      expect(await statInside(sd, "/etc/lanekeeper-coordinator/lanekeeper.yaml")).toMatchObject({ mode: "640", user: "root", group: "lk-coordinator" });
      expect(await statInside(sd, "/etc/lanekeeper-coordinator/coordinator.env")).toMatchObject({ mode: "600", user: "root" });
      expect(await statInside(sd, `${STATE}/coordinator.key`)).toMatchObject({ mode: "600", user: "lk-coordinator" });
      expect(await statInside(sd, `${STATE}/coordinator.key.keyset.json`)).toBeDefined();
      const env = await readInside(sd, "/etc/lanekeeper-coordinator/coordinator.env");
      expect(env).toContain(`LANEKEEPER_NATS_PASSWORD='${inputs.natsPassword}'`);
      expect(env).toContain(`LANEKEEPER_GITHUB_TOKEN='${inputs.githubToken}'`);

      // Serving: healthy, leading, its audit chain started in the state directory.
      expect((await httpGet(port, "/healthz")).status).toBe(200);
      await waitUntil(async () => /^lanekeeper_leader 1$/m.test((await httpGet(port, "/metrics")).body), {
        timeoutMs: 60_000,
        what: "the installed coordinator to take the leader lock",
        diagnostics: async () => (await sd.systemctl("status", "--no-pager", "--full", UNIT)).stdout,
      });

      // `systemctl reload` (docs/cluster.md, "Policy reload") sends SIGHUP: the same process re-reads its policy.
      const unchangedReloads = async (): Promise<number> => Number(/^lanekeeper_policy_reloads_total\{result="unchanged"\} (\d+)$/m.exec((await httpGet(port, "/metrics")).body)?.[1]);
      const pid = (await sd.unitProperties(UNIT, ["MainPID"])).MainPID;
      const before = await unchangedReloads();
      const reload = await sd.systemctl("reload", UNIT);
      expect(reload.code, reload.stderr).toBe(0);
      await waitUntil(async () => (await unchangedReloads()) > before, {
        timeoutMs: 30_000,
        what: "the installed coordinator to re-read its policy on systemctl reload",
        diagnostics: async () => (await sd.systemctl("status", "--no-pager", "--full", UNIT)).stdout,
      });
      expect((await sd.unitProperties(UNIT, ["MainPID"])).MainPID).toBe(pid);

      const version = await sd.exec("lanekeeper", ["--version"], { env: installEnv() });
      expect(version.code, version.stderr).toBe(0);
      expect(version.stdout).toMatch(/^lanekeeper \d+\.\d+\.\d+\S* \(commit [0-9a-f]{7,}\)\n$/);
    },
    INSTALL_TIMEOUT_MS,
  );

  it(
    "re-running it with the bundle upgrades in place and keeps key, policy, logins and metrics port",
    async () => {
      const keyBefore = await readInside(sd, `${STATE}/coordinator.key`);
      const pidBefore = (await sd.unitProperties(UNIT, ["MainPID"])).MainPID;
      const r = await offline(sd, "bash", [INSTALL, "--from", join(dist, names.coordTar)], { timeoutMs: INSTALL_TIMEOUT_MS });
      expect(r.code, r.stderr).toBe(0);
      expect(await readInside(sd, `${STATE}/coordinator.key`)).toBe(keyBefore);
      expect(await readInside(sd, "/opt/lanekeeper/bin/lanekeeper")).toMatch(/^#!\/bin\/sh/);
      expect((await sd.systemctl("is-active", UNIT)).stdout.trim()).toBe("active");
      expect((await sd.unitProperties(UNIT, ["MainPID"])).MainPID).not.toBe(pidBefore);
      expect((await httpGet(port, "/healthz")).status).toBe(200);
    },
    INSTALL_TIMEOUT_MS,
  );
});
