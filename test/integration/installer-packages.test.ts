// The Debian packages `npm run dist` builds (scripts/dist-deb.mjs), installed with dpkg inside a real systemd whose
// /usr, /opt, /var/lib and /etc are its own (installer-fixture.ts), with no network: the agent package creates
// its users and directories, starts nothing until `lanekeeper-agent init` configured it, then runs under systemd
// with `lanekeeper-agent` on the PATH; `remove` leaves config and keys, `purge` leaves nothing it created. The
// coordinator package, configured with `install-coordinator.sh --packaged`, runs `lanekeeper serve`, and its purge
// removes its user and files.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { startGitHubEmulator, startNatsServer, waitUntil, type GitHubEmulator, type NatsServerHandle, type SystemdSandbox } from "@lanekeeper/harness";
import { parseAgentConfig } from "@lanekeeper/shared";
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
} from "./installer-fixture.js";

const HOST = "pkg01";
const AGENT_UNIT = "lanekeeper-agent.service";
const COORD_UNIT = "lanekeeper.service";
const DPKG_TIMEOUT_MS = 300_000;

let sd: SystemdSandbox;
let nats: NatsServerHandle;
let gh: GitHubEmulator;
let dist: string;
let names: Awaited<ReturnType<typeof artifactNames>>;
let natsPassword = "";

beforeAll(async () => {
  natsPassword = randomBytes(24).toString("base64url");
  nats = await startNatsServer({ users: { agents: [], coordinator: { user: "coordinator", password: natsPassword } } });
  gh = await startGitHubEmulator();
  dist = await distArtifacts();
  names = await artifactNames(dist);
  sd = await startInstallSandbox();
}, DIST_TIMEOUT_MS);

afterAll(async () => {
  await sd?.stop();
  await gh?.stop();
  await nats?.stop();
});

/** A root shell's command by its bare name, inside the sandbox. */
function sh(cmd: string, ...args: string[]) {
  return sd.exec(cmd, args, { env: installEnv(), timeoutMs: 120_000 });
}

async function activeState(unit: string): Promise<string> {
  return (await sd.systemctl("is-active", unit)).stdout.trim();
}

describe("the lanekeeper-agent Debian package", () => {
  it(
    "installs with dpkg -i: users, directories, the unit enabled but nothing started unconfigured",
    async () => {
      const r = await offline(sd, "dpkg", ["-i", join(dist, names.agentDeb)], { timeoutMs: DPKG_TIMEOUT_MS });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect((await statInside(sd, "/usr/bin/lanekeeper-agent"))?.mode).toBe("755");
      expect(await readInside(sd, "/usr/lib/systemd/system/lanekeeper-agent.service")).toContain("ExecStart=/usr/bin/lanekeeper-agent run --config /etc/lanekeeper/agent.yaml");
      expect((await sh("getent", "group", "lanekeeper")).code).toBe(0);
      expect((await sh("id", "-gn", "lanekeeper-runner")).stdout.trim()).toBe("lanekeeper");
      expect(await statInside(sd, "/etc/lanekeeper")).toMatchObject({ mode: "2750", user: "root", group: "lanekeeper" });
      expect(await statInside(sd, "/var/lib/lanekeeper")).toMatchObject({ mode: "700", user: "root" });
      expect(await statInside(sd, "/var/lib/lanekeeper-lanes")).toMatchObject({ mode: "755", user: "root" });
      expect(await statInside(sd, "/opt/lanekeeper/runners")).toMatchObject({ mode: "755", user: "root" });
      expect((await sd.systemctl("is-enabled", AGENT_UNIT)).stdout.trim()).toBe("enabled");
      expect(await activeState(AGENT_UNIT)).toBe("inactive");
      // Even asked to, it does not run without a config (ConditionPathExists): not started, not failed.
      await sd.systemctl("start", AGENT_UNIT);
      expect(await activeState(AGENT_UNIT)).toBe("inactive");
      const v = await sh("lanekeeper-agent", "--version");
      expect(v.code, v.stderr).toBe(0);
      expect(v.stdout).toMatch(/^lanekeeper-agent \d+\.\d+\.\d+\S* \(commit [0-9a-f]{7,}\)\n$/);
    },
    DPKG_TIMEOUT_MS,
  );

  it("configured with lanekeeper-agent init, its service starts and status answers from the PATH, control disabled; an upgrade restarts it", async () => {
    const init = await sh("sh", "-c", `lanekeeper-agent init --host-id ${HOST} > /var/lib/lanekeeper/enrollment.yaml`);
    expect(init.code, init.stderr).toBe(0);
    // The config belongs to the lanekeeper group (setgid directory), as the installer leaves it.
    expect(await statInside(sd, "/etc/lanekeeper/agent.yaml")).toMatchObject({ mode: "640", group: "lanekeeper" });
    expect(parseAgentConfig(await readInside(sd, "/etc/lanekeeper/agent.yaml")).control.enabled).toBe(false);
    const start = await sd.systemctl("start", AGENT_UNIT);
    expect(start.code, start.stderr).toBe(0);
    const status = await waitUntil(
      async () => {
        const r = await sh("lanekeeper-agent", "status", "--json");
        return r.code === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
      },
      { timeoutMs: 60_000, what: "the packaged agent's status socket", diagnostics: async () => (await sd.systemctl("status", "--no-pager", "--full", AGENT_UNIT)).stdout },
    );
    expect(status.hostId).toBe(HOST);
    expect(status.controlEnabled ?? false).toBe(false);
    expect(await activeState(AGENT_UNIT)).toBe("active");

    // An upgrade (dpkg -i over the installed package) restarts the configured agent on the new binary, keeping keys.
    const key = await readInside(sd, "/var/lib/lanekeeper/identity.key");
    const pid = (await sd.unitProperties(AGENT_UNIT, ["MainPID"])).MainPID;
    const again = await offline(sd, "dpkg", ["-i", join(dist, names.agentDeb)], { timeoutMs: DPKG_TIMEOUT_MS });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await activeState(AGENT_UNIT)).toBe("active");
    expect((await sd.unitProperties(AGENT_UNIT, ["MainPID"])).MainPID).not.toBe(pid);
    expect(await readInside(sd, "/var/lib/lanekeeper/identity.key")).toBe(key);
  }, DPKG_TIMEOUT_MS);

  it(
    "dpkg -r stops it and removes binary and unit, keeping config and keys; dpkg --purge removes everything it created",
    async () => {
      const remove = await offline(sd, "dpkg", ["-r", "lanekeeper-agent"], { timeoutMs: DPKG_TIMEOUT_MS });
      expect(remove.code, remove.stdout + remove.stderr).toBe(0);
      expect(await activeState(AGENT_UNIT)).not.toBe("active");
      expect(await statInside(sd, "/usr/bin/lanekeeper-agent")).toBeUndefined();
      expect(await statInside(sd, "/usr/lib/systemd/system/lanekeeper-agent.service")).toBeUndefined();
      expect(await statInside(sd, "/etc/lanekeeper/agent.yaml")).toBeDefined();
      expect(await statInside(sd, "/var/lib/lanekeeper/identity.key")).toBeDefined();

      const purge = await offline(sd, "dpkg", ["--purge", "lanekeeper-agent"], { timeoutMs: DPKG_TIMEOUT_MS });
      expect(purge.code, purge.stdout + purge.stderr).toBe(0);
      for (const gone of ["/etc/lanekeeper", "/var/lib/lanekeeper", "/var/lib/lanekeeper-lanes", "/opt/lanekeeper", "/run/lanekeeper"]) {
        expect(await statInside(sd, gone), gone).toBeUndefined();
      }
      expect((await sh("getent", "passwd", "lanekeeper-runner")).code).not.toBe(0);
      expect((await sh("getent", "group", "lanekeeper")).code).not.toBe(0);
      expect((await sh("find", "/etc/systemd/system", "-name", "lanekeeper-agent*")).stdout.trim()).toBe("");
      expect((await sh("dpkg-query", "-W", "-f", "${Status}", "lanekeeper-agent")).stdout).not.toContain("installed");
    },
    DPKG_TIMEOUT_MS,
  );
});

describe("the lanekeeper (coordinator) Debian package", () => {
  it(
    "installs with dpkg -i, is configured with install-coordinator.sh --packaged and runs lanekeeper serve; purge removes it all",
    async () => {
      const r = await offline(sd, "dpkg", ["-i", join(dist, names.coordDeb)], { timeoutMs: DPKG_TIMEOUT_MS });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect((await sh("id", "-un", "lk-coordinator")).code).toBe(0);
      expect(await statInside(sd, "/var/lib/lanekeeper-coordinator")).toMatchObject({ mode: "700", user: "lk-coordinator" });
      expect(await activeState(COORD_UNIT)).toBe("inactive");

      const inputs = await writeCoordinatorInputs(join(sd.root, "pkg-coordinator"), {
        natsUrl: nats.url,
        natsUser: "coordinator",
        natsPassword,
        githubApiUrl: gh.apiUrl,
        githubWebUrl: gh.url,
        githubToken: gh.token,
        stateDir: "/var/lib/lanekeeper-coordinator",
      });
      const port = await freePort();
      const install = await offline(
        sd,
        "bash",
        [join(repo, "install/install-coordinator.sh"), "--packaged", "--policy", inputs.policy, "--key", inputs.key, "--nats-password-file", inputs.natsPasswordFile, "--github-token-file", inputs.githubTokenFile, "--metrics-port", String(port)],
        { timeoutMs: DPKG_TIMEOUT_MS },
      );
      expect(install.code, install.stdout + install.stderr).toBe(0);
      expect(await activeState(COORD_UNIT)).toBe("active");
      expect((await sd.unitProperties(COORD_UNIT, ["ExecStart"])).ExecStart).toContain("path=/usr/bin/lanekeeper");
      expect((await httpGet(port, "/healthz")).status).toBe(200);
      expect((await sh("lanekeeper", "--version")).stdout).toMatch(/^lanekeeper \d+\.\d+\.\d+\S* \(commit [0-9a-f]{7,}\)\n$/);

      const purge = await offline(sd, "dpkg", ["--purge", "lanekeeper"], { timeoutMs: DPKG_TIMEOUT_MS });
      expect(purge.code, purge.stdout + purge.stderr).toBe(0);
      expect(await activeState(COORD_UNIT)).not.toBe("active");
      for (const gone of ["/usr/bin/lanekeeper", "/etc/lanekeeper-coordinator", "/var/lib/lanekeeper-coordinator", "/etc/systemd/system/lanekeeper.service.d"]) {
        expect(await statInside(sd, gone), gone).toBeUndefined();
      }
      expect((await sh("getent", "passwd", "lk-coordinator")).code).not.toBe(0);
      expect((await sh("getent", "group", "lk-coordinator")).code).not.toBe(0);
    },
    DPKG_TIMEOUT_MS,
  );
});
