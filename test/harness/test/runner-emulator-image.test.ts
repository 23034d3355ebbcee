/**
 * The runner emulator image: built locally with podman (no registry), addressed by digest, and run with
 * host networking against the GitHub emulator on loopback — once the ARC way (JIT config in the
 * environment, `run.sh` as the command, one job, exit 0) and once the config.sh way (`podman stop` cancels
 * nothing, deletes the session, exits 0).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitHubEmulator, type GitHubEmulator } from "../src/github-emulator/server.js";
import { runCommand, waitUntil } from "../src/process-util.js";
import { buildRunnerImage, type RunnerImage } from "../src/runner-image.js";
import { allProcesses, restPost } from "./runner-emulator-helpers.js";

const REPO = "octo/image";

describe("runner emulator image (podman)", () => {
  let gh: GitHubEmulator;
  let image: RunnerImage;
  const containers: string[] = [];

  beforeAll(async () => {
    gh = await startGitHubEmulator({ repos: [REPO] });
    const started = Date.now();
    image = await buildRunnerImage();
    const size = await runCommand("podman", ["image", "inspect", "--format", "{{.Size}}", image.reference]);
    // Figures, not assertions: the build time depends on the machine and on whether the image existed.
    console.info(
      `runner image ${image.reference} (${image.built ? "built" : "found"}) in ${Date.now() - started} ms, ` +
        `${(Number(size.stdout.trim()) / 1e6).toFixed(1)} MB, ${image.digestReference}`,
    );
  });

  afterAll(async () => {
    for (const name of containers) await runCommand("podman", ["rm", "-f", "-t", "0", name]).catch(() => undefined);
    await gh?.stop();
  });

  const podman = async (args: string[]): Promise<string> => {
    const r = await runCommand("podman", args, { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`podman ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout.trim();
  };

  const runnerNamed = async (name: string) => (await gh.control.listRunners()).find((r) => r.name === name);

  const containerName = (what: string): string => {
    const name = `lk-runner-test-${what}-${randomBytes(4).toString("hex")}`;
    containers.push(name);
    return name;
  };

  it("is tagged by content hash and exposes a digest reference podman resolves", async () => {
    expect(image.reference).toMatch(/^localhost\/lanekeeper\/runner-emulator:[0-9a-f]{16}$/);
    expect(image.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(image.digestReference).toBe(`localhost/lanekeeper/runner-emulator@${image.digest}`);
    expect(await podman(["image", "inspect", "--format", "{{.Digest}}", image.reference])).toBe(image.digest);
    expect(await podman(["image", "inspect", "--format", "{{.Id}}", image.digestReference])).toBe(image.id);
    // Building again finds it.
    const again = await buildRunnerImage();
    expect(again).toEqual({ ...image, built: false });
    // Laid out like the official image.
    const config = JSON.parse(await podman(["image", "inspect", "--format", "{{json .Config}}", image.digestReference])) as {
      User: string;
      WorkingDir: string;
      Env: string[];
    };
    expect(config.User).toBe("runner");
    expect(config.WorkingDir).toBe("/home/runner");
    expect(config.Env).toContain("RUNNER_MANUALLY_TRAP_SIG=1");
  });

  it("runs a JIT runner (ARC style) that goes online, runs one job in a Runner.Worker and exits 0", async () => {
    const jit = (await restPost(gh.apiUrl, gh.token, `/repos/${REPO}/actions/runners/generate-jitconfig`, {
      name: "img-jit",
      runner_group_id: 1,
      labels: ["lk-img-jit"],
    })).encoded_jit_config as string;
    const name = containerName("jit");
    await podman([
      "run", "-d", "--name", name, "--network", "host",
      "-e", `ACTIONS_RUNNER_INPUT_JITCONFIG=${jit}`, "-e", "LK_RUNNER_POLL_MS=1000",
      image.digestReference, "/home/runner/run.sh",
    ]);
    await waitUntil(async () => (await runnerNamed("img-jit"))?.status === "online" || undefined, {
      timeoutMs: 30_000,
      what: "the container's runner online",
      diagnostics: async () => (await runCommand("podman", ["logs", name])).stdout,
    });
    expect(await runnerNamed("img-jit")).toMatchObject({ version: "2.336.0", os: "Linux", ephemeral: true });

    const job = await gh.control.createJob(REPO, { labels: ["lk-img-jit"], name: "in a container", durationMs: 6000 });
    expect((await gh.control.waitForJob(job.id, "in_progress", 15_000)).status).toBe("in_progress");
    // The host sees the container's worker in /proc, by name and argv, as lanekeeper's agent does.
    const worker = await waitUntil(async () => {
      const w = (await allProcesses()).filter((p) => p.comm === "Runner.Worker" && p.argv.includes("/home/runner/bin/Runner.Worker"));
      return w.length > 0 ? w : undefined;
    }, { timeoutMs: 20_000, what: "the container's Runner.Worker on the host" });
    expect(worker[0]!.argv.slice(-3)).toEqual(["spawnclient", "3", "4"]);

    expect(await podman(["wait", name])).toBe("0");
    expect(await gh.control.getJob(job.id)).toMatchObject({ status: "completed", conclusion: "success" });
    expect(await runnerNamed("img-jit")).toBeUndefined();
    const logs = await runCommand("podman", ["logs", name]);
    expect(logs.stdout).toMatch(/Job in a container completed with result: Succeeded/);
    expect(logs.stdout).toContain("Exiting runner...");
  });

  it("configures with config.sh as the image's runner user, and `podman stop` takes it offline at once", async () => {
    const token = (await restPost(gh.apiUrl, gh.token, `/repos/${REPO}/actions/runners/registration-token`)).token as string;
    const name = containerName("cfg");
    await podman([
      "run", "-d", "--name", name, "--network", "host",
      "-e", `ACTIONS_RUNNER_INPUT_TOKEN=${token}`, "-e", "LK_RUNNER_POLL_MS=1000",
      image.digestReference,
      "bash", "-c", `./config.sh --unattended --url ${gh.webUrl(REPO)} --name img-cfg --labels lk-img-cfg && exec ./run.sh`,
    ]);
    await waitUntil(async () => (await runnerNamed("img-cfg"))?.status === "online" || undefined, {
      timeoutMs: 30_000,
      what: "the configured container runner online",
      diagnostics: async () => (await runCommand("podman", ["logs", name])).stdout,
    });
    expect(await podman(["exec", name, "id", "-u"])).toBe("1001");
    expect(await podman(["exec", name, "node", "-e", 'console.log((require("fs").statSync(".credentials").mode & 0o777).toString(8))'])).toBe("600");

    // SIGTERM to PID 1 (run.sh with RUNNER_MANUALLY_TRAP_SIG=1): the listener deletes its session and exits 0.
    await podman(["stop", "-t", "30", name]);
    expect(await podman(["inspect", "--format", "{{.State.ExitCode}}", name])).toBe("0");
    expect(await runnerNamed("img-cfg")).toMatchObject({ status: "offline" });
    const logs = await runCommand("podman", ["logs", name]);
    expect(logs.stdout).toContain("√ Runner successfully added");
    expect(logs.stdout).toMatch(/^Exiting\.\.\.$/m);
  });
});
