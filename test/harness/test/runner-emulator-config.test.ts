/**
 * config.sh of the runner emulator against the real GitHub emulator: every configure flag, the environment
 * inputs, the files it writes, each error with its message and exit code, and `config.sh remove`.
 */
import { existsSync } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitHubEmulator, type GitHubEmulator } from "../src/github-emulator/server.js";
import { freshRunnerDir, removeRunnerDirs, restPost, runnerEnv, runScript } from "./runner-emulator-helpers.js";

const REPO = "octo/repo";
const ORG = "octo-org";

// Tests run concurrently: each uses its own runner directory and runner names.
describe.concurrent("runner emulator: config.sh", () => {
  let gh: GitHubEmulator;

  beforeAll(async () => {
    gh = await startGitHubEmulator({ repos: [REPO], orgs: [ORG] });
  });

  afterAll(async () => {
    await gh?.stop();
    await removeRunnerDirs();
  });

  const scopePath = (scope: string): string => (scope.includes("/") ? `/repos/${scope}` : `/orgs/${scope}`);
  const registrationToken = async (scope = REPO): Promise<string> =>
    (await restPost(gh.apiUrl, gh.token, `${scopePath(scope)}/actions/runners/registration-token`)).token as string;
  const removeToken = async (scope = REPO): Promise<string> =>
    (await restPost(gh.apiUrl, gh.token, `${scopePath(scope)}/actions/runners/remove-token`)).token as string;
  const runnersNamed = async (name: string) => (await gh.control.listRunners()).filter((r) => r.name === name);

  /** `config.sh --unattended --url <repo> --name <name> …` with the token in ACTIONS_RUNNER_INPUT_TOKEN. */
  const configure = async (dir: string, name: string, args: string[] = [], env: Record<string, string | undefined> = {}, scope = REPO) =>
    runScript(dir, "config.sh", ["--unattended", "--url", gh.webUrl(scope), "--name", name, ...args], {
      env: runnerEnv({ ACTIONS_RUNNER_INPUT_TOKEN: await registrationToken(scope), ...env }),
    });

  it("configures unattended with the token only in the environment, and writes the runner files", async () => {
    const dir = await freshRunnerDir();
    const r = await configure(dir, "cfg-basic", ["--labels", "gpu,Big"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    // The real sequence of sections and success lines.
    const order = ["Self-hosted runner registration", "# Authentication", "√ Connected to GitHub", "# Runner Registration",
      "√ Runner successfully added", "# Runner settings", "√ Settings Saved."];
    let at = -1;
    for (const line of order) {
      const i = r.stdout.indexOf(line, at + 1);
      expect(i, `"${line}" after position ${at} in:\n${r.stdout}`).toBeGreaterThan(at);
      at = i;
    }

    // .runner: camelCase JSON with a UTF-8 BOM, like the real IOUtil.SaveObject.
    const raw = await readFile(join(dir, ".runner"));
    expect([...raw.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const settings = JSON.parse(raw.toString("utf8").slice(1)) as Record<string, unknown>;
    const [server] = await runnersNamed("cfg-basic");
    expect(server).toBeDefined();
    expect(settings).toEqual({
      agentId: server!.id,
      agentName: "cfg-basic",
      poolId: 1,
      poolName: "Default",
      serverUrl: `${gh.url}/_runner`,
      gitHubUrl: gh.webUrl(REPO),
      workFolder: "_work",
    });

    // .credentials and the RSA key: mode 0600; the credential is the emulator's session secret.
    const credText = (await readFile(join(dir, ".credentials"), "utf8")).replace(/^\uFEFF/, "");
    const cred = JSON.parse(credText) as { scheme: string; data: Record<string, string> };
    expect(cred.scheme).toBe("OAuth");
    expect(cred.data.clientId).toBe(String(server!.id));
    expect(cred.data.authorizationUrl).toBe(`${gh.url}/_runner`);
    expect(cred.data.token).toMatch(/\S{16,}/);
    expect((await stat(join(dir, ".credentials"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, ".credentials_rsaparams"))).mode & 0o777).toBe(0o600);
    const rsa = JSON.parse((await readFile(join(dir, ".credentials_rsaparams"), "utf8")).replace(/^\uFEFF/, "")) as Record<string, string>;
    expect(Object.keys(rsa).sort()).toEqual(["d", "dp", "dq", "exponent", "inverseQ", "modulus", "p", "q"]);
    expect(Buffer.from(rsa.modulus!, "base64").length).toBe(256);

    // env.sh: .path holds PATH, .env the well-known variables that are set.
    expect((await readFile(join(dir, ".path"), "utf8")).trim()).toBe(process.env.PATH);
    expect(existsSync(join(dir, ".env"))).toBe(true);
    // _diag/Runner_YYYYMMDD-HHMMSS-utc.log, without the token in it.
    const diag = await readdir(join(dir, "_diag"));
    expect(diag.some((n) => /^Runner_\d{8}-\d{6}-utc\.log$/.test(n))).toBe(true);
    for (const n of diag) expect(await readFile(join(dir, "_diag", n), "utf8")).not.toContain(cred.data.token);

    // Server side: offline until run, default labels read-only, custom labels kept in their case.
    expect(server!.status).toBe("offline");
    expect(server!.ephemeral).toBe(false);
    const rest = (await (await fetch(`${gh.apiUrl}/repos/${REPO}/actions/runners/${server!.id}`, { headers: { authorization: `token ${gh.token}` } })).json()) as {
      labels: { name: string; type: string }[];
    };
    expect(rest.labels.map((l) => [l.name, l.type])).toEqual([
      ["self-hosted", "read-only"],
      ["Linux", "read-only"],
      ["X64", "read-only"],
      ["gpu", "custom"],
      ["Big", "custom"],
    ]);
  });

  it("takes flag names case-insensitively and every argument from ACTIONS_RUNNER_INPUT_*", async () => {
    const dir = await freshRunnerDir();
    const r = await runScript(dir, "config.sh", ["--UNATTENDED", "--Url", gh.webUrl(REPO)], {
      env: runnerEnv({
        ACTIONS_RUNNER_INPUT_TOKEN: await registrationToken(),
        ACTIONS_RUNNER_INPUT_NAME: "cfg-env",
        ACTIONS_RUNNER_INPUT_LABELS: "from-env",
        ACTIONS_RUNNER_INPUT_EPHEMERAL: "true",
        actions_runner_input_disableupdate: "TRUE",
        ACTIONS_RUNNER_INPUT_WORK: "jobs",
      }),
    });
    expect(r.code, r.stderr).toBe(0);
    const settings = JSON.parse((await readFile(join(dir, ".runner"), "utf8")).slice(1)) as Record<string, unknown>;
    expect(settings).toMatchObject({ agentName: "cfg-env", workFolder: "jobs", ephemeral: true, disableUpdate: true });
    const [server] = await runnersNamed("cfg-env");
    expect(server).toMatchObject({ ephemeral: true, labels: ["self-hosted", "Linux", "X64", "from-env"] });
  });

  it("accepts --no-default-labels with --labels, and refuses it without (exit 1, nothing registered)", async () => {
    const withLabels = await freshRunnerDir();
    const ok = await configure(withLabels, "cfg-nodefault", ["--no-default-labels", "--labels", "only-me"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect((await runnersNamed("cfg-nodefault"))[0]?.labels).toEqual(["only-me"]);

    const without = await freshRunnerDir();
    const bad = await configure(without, "cfg-nodefault-bad", ["--no-default-labels"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("Disabling default labels via --no-default-labels without specifying --labels is not supported");
    expect(await runnersNamed("cfg-nodefault-bad")).toEqual([]);
    expect(existsSync(join(without, ".runner"))).toBe(false);
  });

  it("refuses to configure twice", async () => {
    const dir = await freshRunnerDir();
    expect((await configure(dir, "cfg-twice")).code).toBe(0);
    const again = await configure(dir, "cfg-twice-2");
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(
      "Cannot configure the runner because it is already configured. To reconfigure the runner, run 'config.cmd remove' or './config.sh remove' first.",
    );
    expect(await runnersNamed("cfg-twice-2")).toEqual([]);
  });

  it("reports unknown flags and still configures", async () => {
    const dir = await freshRunnerDir();
    const r = await configure(dir, "cfg-unknown", ["--bogus", "--colour", "red"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      "Unrecognized command-line input arguments for command configure: 'bogus, colour'. For usage refer to: .\\config.cmd --help or ./config.sh --help",
    );
    expect(await runnersNamed("cfg-unknown")).toHaveLength(1);
  });

  it("fails unattended without a token or a URL", async () => {
    const noToken = await runScript(await freshRunnerDir(), "config.sh", ["--unattended", "--url", gh.webUrl(REPO), "--name", "x"]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain("Invalid configuration provided for token. Terminating unattended configuration.");
    const noUrl = await runScript(await freshRunnerDir(), "config.sh", ["--unattended", "--token", "t"]);
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr).toContain("Invalid configuration provided for url. Terminating unattended configuration.");
    const badUrl = await runScript(await freshRunnerDir(), "config.sh", ["--unattended", "--url", "not-a-url", "--token", "t"]);
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toContain("Invalid configuration provided for url.");
  });

  it("fails with an unknown registration token or an unserved URL, writing nothing", async () => {
    const dir = await freshRunnerDir();
    const r = await runScript(dir, "config.sh", ["--unattended", "--url", gh.webUrl(REPO), "--name", "cfg-badtoken"], {
      env: runnerEnv({ ACTIONS_RUNNER_INPUT_TOKEN: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Http response code: Unauthorized from 'POST ${gh.url}/_runner/register'`);
    expect(r.stderr).toContain("Response status code does not indicate success: 401 (Unauthorized).");
    expect(r.stdout).not.toContain("Connected to GitHub");
    expect(existsSync(join(dir, ".runner"))).toBe(false);
    expect(existsSync(join(dir, ".credentials"))).toBe(false);

    const unserved = await runScript(await freshRunnerDir(), "config.sh", ["--unattended", "--url", `${gh.url}/nobody/nothing`, "--name", "x"], {
      env: runnerEnv({ ACTIONS_RUNNER_INPUT_TOKEN: await registrationToken() }),
    });
    expect(unserved.code).toBe(1);
    expect(unserved.stderr).toContain("Http response code: NotFound");
  });

  it("refuses a taken name unattended, and replaces it with --replace", async () => {
    const first = await freshRunnerDir();
    expect((await configure(first, "cfg-dup")).code).toBe(0);
    const [original] = await runnersNamed("cfg-dup");

    const second = await freshRunnerDir();
    const refused = await configure(second, "cfg-dup");
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain("A runner exists with the same name");
    expect(refused.stderr).toContain("A runner exists with the same name cfg-dup.");
    expect(existsSync(join(second, ".runner"))).toBe(false);

    const replaced = await configure(second, "cfg-dup", ["--replace", "--labels", "new"]);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.stdout).toContain("√ Successfully replaced the runner");
    const now = await runnersNamed("cfg-dup");
    expect(now).toHaveLength(1);
    // GitHub replaces in place: same id, labels rewritten, the old copy's credential no longer works.
    expect(now[0]!.id).toBe(original!.id);
    expect(now[0]!.labels).toEqual(["self-hosted", "Linux", "X64", "new"]);
    const stale = await runScript(first, "bin/Runner.Listener", ["run"]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/Failed to create (a )?session/);
  });

  it("joins a named runner group of an organization and refuses an unknown one", async () => {
    const ok = await freshRunnerDir();
    const r = await configure(ok, "cfg-org", ["--runnergroup", "Default"], {}, ORG);
    expect(r.code, r.stderr).toBe(0);
    expect((await runnersNamed("cfg-org"))[0]).toMatchObject({ scopeKind: "org", scope: ORG });

    const bad = await configure(await freshRunnerDir(), "cfg-org-bad", ["--runnergroup", "nope"], {}, ORG);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Could not find any self-hosted runner group named "nope".');
    expect(await runnersNamed("cfg-org-bad")).toEqual([]);
  });

  it("sends a github.com URL to the emulator named by LK_RUNNER_EMULATOR_URL", async () => {
    const dir = await freshRunnerDir();
    const r = await runScript(dir, "config.sh", ["--unattended", "--url", `https://github.com/${REPO}`, "--name", "cfg-redirect"], {
      env: runnerEnv({ ACTIONS_RUNNER_INPUT_TOKEN: await registrationToken(), LK_RUNNER_EMULATOR_URL: gh.url }),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(await runnersNamed("cfg-redirect")).toHaveLength(1);
    const cred = JSON.parse((await readFile(join(dir, ".credentials"), "utf8")).slice(1)) as { data: { authorizationUrl: string } };
    expect(cred.data.authorizationUrl).toBe(`${gh.url}/_runner`);
  });

  it("prompts on stdin when not unattended", async () => {
    const dir = await freshRunnerDir();
    const token = await registrationToken();
    const r = await runScript(dir, "config.sh", [], { input: `${gh.webUrl(REPO)}\n${token}\ncfg-prompted\nask1,ask2\nmywork\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("What is the URL of your repository?");
    expect(r.stdout).toContain("What is your runner register token?");
    expect(r.stdout).toContain("Enter the name of runner: [press Enter for");
    expect(r.stdout).toContain("Enter any additional labels (ex. label-1,label-2): [press Enter to skip]");
    expect(r.stdout).toContain("Enter name of work folder: [press Enter for _work]");
    const settings = JSON.parse((await readFile(join(dir, ".runner"), "utf8")).slice(1)) as Record<string, unknown>;
    expect(settings).toMatchObject({ agentName: "cfg-prompted", workFolder: "mywork" });
    expect((await runnersNamed("cfg-prompted"))[0]?.labels).toEqual(["self-hosted", "Linux", "X64", "ask1", "ask2"]);
  });

  it("refuses root unless RUNNER_ALLOW_RUNASROOT is set", async () => {
    expect(process.getuid?.()).toBe(0); // the test machine runs as root (DESIGN.md 9)
    const r = await runScript(await freshRunnerDir(), "config.sh", ["--unattended"], { env: runnerEnv({ RUNNER_ALLOW_RUNASROOT: undefined }) });
    expect(r.code).toBe(1);
    expect(r.stdout.trim()).toBe("Must not run with sudo");
  });

  it("prints the version, the commit and the usage", async () => {
    const dir = await freshRunnerDir();
    const version = await runScript(dir, "bin/Runner.Listener", ["--version"]);
    expect([version.code, version.stdout.trim()]).toEqual([0, "2.336.0"]);
    const commit = await runScript(dir, "bin/Runner.Listener", ["--commit"]);
    expect(commit.code).toBe(0);
    expect(commit.stdout.trim()).toMatch(/^[0-9a-f]{40}$/);
    const help = await runScript(dir, "config.sh", ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--no-default-labels");
  });

  describe("config.sh remove", () => {
    it("deregisters with a remove token from the environment and deletes the local files", async () => {
      const dir = await freshRunnerDir();
      expect((await configure(dir, "rm-basic")).code).toBe(0);
      const r = await runScript(dir, "config.sh", ["remove"], { env: runnerEnv({ ACTIONS_RUNNER_INPUT_TOKEN: await removeToken() }) });
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.split("\n").filter((l) => l.trim() !== "");
      expect(lines).toEqual(["# Runner removal", "√ Runner removed successfully", "√ Removed .credentials", "√ Removed .runner"]);
      for (const f of [".runner", ".credentials", ".credentials_rsaparams"]) expect(existsSync(join(dir, f))).toBe(false);
      expect(await runnersNamed("rm-basic")).toEqual([]);
    });

    it("takes --token on argv (case-insensitive command) and fails with a bad one, keeping the files", async () => {
      const dir = await freshRunnerDir();
      expect((await configure(dir, "rm-argv")).code).toBe(0);
      const bad = await runScript(dir, "config.sh", ["REMOVE", "--token", "nope-nope-nope"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("Failed: Removing runner from the server");
      expect(existsSync(join(dir, ".runner"))).toBe(true);
      expect(await runnersNamed("rm-argv")).toHaveLength(1);
      const good = await runScript(dir, "config.sh", ["REMOVE", "--token", await removeToken()]);
      expect(good.code, good.stderr).toBe(0);
      expect(await runnersNamed("rm-argv")).toEqual([]);
    });

    it("refuses while a service is installed", async () => {
      const dir = await freshRunnerDir();
      expect((await configure(dir, "rm-service")).code).toBe(0);
      await writeFile(join(dir, ".service"), "actions.runner.octo-repo.rm-service.service\n");
      const r = await runScript(dir, "config.sh", ["remove", "--token", await removeToken()]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("Uninstall service first");
      expect(existsSync(join(dir, ".runner"))).toBe(true);
      expect(await runnersNamed("rm-service")).toHaveLength(1);
    });

    it("skips the server when nothing is configured", async () => {
      const r = await runScript(await freshRunnerDir(), "config.sh", ["remove", "--token", "whatever"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Cannot connect to server, because config files are missing. Skipping removing runner from the server.");
      expect(r.stdout).toContain("Does not exist. Skipping Removing .credentials");
      expect(r.stdout).toContain("Does not exist. Skipping Removing .runner");
    });

    it("--local deletes only the local files", async () => {
      const dir = await freshRunnerDir();
      expect((await configure(dir, "rm-local")).code).toBe(0);
      const r = await runScript(dir, "config.sh", ["remove", "--local"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("√ Removed .credentials");
      expect(r.stdout).toContain("√ Removed .runner");
      expect(existsSync(join(dir, ".runner"))).toBe(false);
      expect(await runnersNamed("rm-local")).toHaveLength(1);
    });
  });
});
