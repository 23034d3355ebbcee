/**
 * run.sh / Runner.Listener / Runner.Worker of the runner emulator against the real GitHub emulator, with
 * real child processes: sessions (online/offline), jobs (a real `Runner.Worker` child found through /proc),
 * signals, exit codes and the run.sh loop, ephemeral and JIT runners, session conflicts and deleted
 * registrations, and the runsvc.sh service host.
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunnerView } from "../src/github-emulator/control-types.js";
import { startGitHubEmulator, type GitHubEmulator } from "../src/github-emulator/server.js";
import { pidExists, waitUntil } from "../src/process-util.js";
import {
  findByComm,
  freshRunnerDir,
  killAllRunners,
  procEnviron,
  procInfo,
  removeRunnerDirs,
  restPost,
  runnerEnv,
  runScript,
  startRunner,
  type RunningRunner,
} from "./runner-emulator-helpers.js";

const REPO = "octo/run";
/** The emulator's liveness window: a session without a poll this long goes offline (models kill -9). */
const OFFLINE_AFTER_MS = 3000;

// Tests run concurrently (each has its own runner directory, name and job labels) to keep the file short.
describe.concurrent("runner emulator: run.sh, Runner.Listener and Runner.Worker", () => {
  let gh: GitHubEmulator;

  beforeAll(async () => {
    gh = await startGitHubEmulator({ repos: [REPO], offlineAfterMs: OFFLINE_AFTER_MS });
  });

  afterAll(async () => {
    await killAllRunners();
    await gh?.stop();
    await removeRunnerDirs();
  });

  const token = async (kind: "registration" | "remove"): Promise<string> =>
    (await restPost(gh.apiUrl, gh.token, `/repos/${REPO}/actions/runners/${kind}-token`)).token as string;

  const runner = async (name: string): Promise<RunnerView | undefined> => (await gh.control.listRunners()).find((r) => r.name === name);

  const waitForRunner = (name: string, what: string, ok: (r: RunnerView | undefined) => boolean, timeoutMs = 15_000): Promise<RunnerView | true> =>
    waitUntil(async () => {
      const r = await runner(name);
      return ok(r) ? (r ?? true) : undefined;
    }, { timeoutMs, what: `${name} ${what}` });

  /** A fresh runner directory configured unattended as `name` (label `lk-<name>` so jobs find only it). */
  const configured = async (name: string, args: string[] = []): Promise<string> => {
    const dir = await freshRunnerDir();
    const r = await runScript(dir, "config.sh", ["--unattended", "--url", gh.webUrl(REPO), "--name", name, "--labels", `lk-${name}`, ...args], {
      env: runnerEnv({ ACTIONS_RUNNER_INPUT_TOKEN: await token("registration") }),
    });
    expect(r.code, r.stderr).toBe(0);
    return dir;
  };

  const listening = async (run: RunningRunner): Promise<void> => {
    await run.waitForOutput(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ: Listening for Jobs$/m);
  };

  it("goes online, runs a job in a real Runner.Worker child, refuses removal while busy, and cancels it on SIGTERM", async () => {
    const dir = await configured("life");
    const run = startRunner(dir, "run.sh");
    await listening(run);
    expect(run.output).toContain("√ Connected to GitHub");
    expect(run.output).toContain("Current runner version: '2.336.0'");
    expect(await runner("life")).toMatchObject({ status: "online", busy: false, version: "2.336.0", os: "Linux" });

    // The listener is a real process named Runner.Listener (comm) whose argv runs bin/Runner.Listener.
    const [listener] = await findByComm("Runner.Listener", dir);
    expect(listener).toBeDefined();
    expect(listener!.argv).toContain(join(dir, "bin", "Runner.Listener"));
    expect(listener!.argv).toContain("run");
    expect(await findByComm("Runner.Worker", dir)).toEqual([]);

    const job = await gh.control.createJob(REPO, { labels: ["self-hosted", "lk-life"], name: "long build", durationMs: 120_000 });
    await run.waitForOutput(/Z: Running job: long build$/m);
    expect((await gh.control.getJob(job.id)).status).toBe("in_progress");
    expect(await runner("life")).toMatchObject({ status: "online", busy: true });

    // Process-based job detection: a child of the listener named Runner.Worker, argv `bin/Runner.Worker spawnclient`.
    const workers = await waitUntil(async () => {
      const w = await findByComm("Runner.Worker", dir);
      return w.length > 0 ? w : undefined;
    }, { timeoutMs: 20_000, what: "a Runner.Worker process" });
    expect(workers).toHaveLength(1);
    const worker = workers[0]!;
    expect(worker.ppid).toBe(listener!.pid);
    const at = worker.argv.indexOf(join(dir, "bin", "Runner.Worker"));
    expect(at).toBeGreaterThanOrEqual(0);
    expect(worker.argv.slice(at + 1)).toEqual(["spawnclient", "3", "4"]);
    expect(await readFile(`/proc/${worker.pid}/comm`, "utf8")).toBe("Runner.Worker\n");
    // The job never sees runner inputs (the token travels only in ACTIONS_RUNNER_INPUT_*).
    expect((await procEnviron(worker.pid)).filter((e) => e.toUpperCase().startsWith("ACTIONS_RUNNER_INPUT_"))).toEqual([]);

    // GitHub refuses to delete a busy runner (422), so `config.sh remove` fails and keeps the files.
    const refused = await runScript(dir, "config.sh", ["remove"], { env: runnerEnv({ ACTIONS_RUNNER_INPUT_TOKEN: await token("remove") }) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("is still running a job");
    expect(existsSync(join(dir, ".runner"))).toBe(true);
    expect(pidExists(worker.pid)).toBe(true);

    // SIGTERM to the listener: the job is cancelled, the session deleted, run.sh exits 0.
    process.kill(listener!.pid, "SIGTERM");
    const exit = await run.waitForExit();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/Z: Job long build completed with result: Canceled$/m);
    expect(run.output).toContain("Runner listener exit with 0 return code, stop the service, no retry needed.");
    expect(run.output.trimEnd().endsWith("Exiting runner...")).toBe(true);
    expect(run.output).not.toContain("Exiting...\n"); // only Ctrl-C (SIGINT) prints it
    expect(pidExists(worker.pid)).toBe(false);
    expect(await gh.control.getJob(job.id)).toMatchObject({ status: "completed", conclusion: "cancelled" });
    // DELETE session: offline at once, not after the liveness window.
    expect(await runner("life")).toMatchObject({ status: "offline", busy: false });

    // Now idle, it can be removed.
    const removed = await runScript(dir, "config.sh", ["remove"], { env: runnerEnv({ ACTIONS_RUNNER_INPUT_TOKEN: await token("remove") }) });
    expect(removed.code, removed.stderr).toBe(0);
    expect(await runner("life")).toBeUndefined();
  });

  it("keeps the Runner.Worker exactly as long as the job and reports the planned conclusion", async () => {
    const dir = await configured("results");
    const run = startRunner(dir, "run.sh");
    await listening(run);

    const failing = await gh.control.createJob(REPO, { labels: ["lk-results"], name: "tests", durationMs: 5000, conclusion: "failure" });
    await run.waitForOutput(/Running job: tests$/m);
    const [worker] = await waitUntil(async () => {
      const w = await findByComm("Runner.Worker", dir);
      return w.length > 0 ? w : undefined;
    }, { timeoutMs: 20_000, what: "the worker" });
    // While the job is in progress the worker lives; once it is completed the worker is gone.
    expect((await gh.control.getJob(failing.id)).status).toBe("in_progress");
    expect(pidExists(worker!.pid)).toBe(true);
    const done = await gh.control.waitForJob(failing.id, "completed", 30_000);
    expect(done).toMatchObject({ status: "completed", conclusion: "failure" });
    await waitUntil(() => !pidExists(worker!.pid) || undefined, { timeoutMs: 5000, what: "worker exit" });
    await run.waitForOutput(/Z: Job tests completed with result: Failed$/m);

    const passing = await gh.control.createJob(REPO, { labels: ["lk-results"], name: "lint", durationMs: 200 });
    expect(await gh.control.waitForJob(passing.id, "completed", 15_000)).toMatchObject({ conclusion: "success" });
    await run.waitForOutput(/Z: Job lint completed with result: Succeeded$/m);
    expect(await runner("results")).toMatchObject({ status: "online", busy: false });

    // SIGINT (Ctrl-C) prints "Exiting..." and also exits 0.
    const [listener] = await findByComm("Runner.Listener", dir);
    process.kill(listener!.pid, "SIGINT");
    expect(await run.waitForExit()).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/^Exiting\.\.\.$/m);
    expect(await runner("results")).toMatchObject({ status: "offline" });
  });

  it("ephemeral: takes one job, then exits 0 and deletes .runner and .credentials", async () => {
    const dir = await configured("eph", ["--ephemeral"]);
    const run = startRunner(dir, "run.sh");
    await listening(run);
    const job = await gh.control.createJob(REPO, { labels: ["lk-eph"], name: "once", durationMs: 300 });
    expect(await run.waitForExit()).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/Job once completed with result: Succeeded/);
    expect(run.output).toContain("√ Removed .credentials");
    expect(run.output).toContain("√ Removed .runner");
    expect(run.output).not.toContain("registration has been deleted");
    for (const f of [".runner", ".credentials", ".credentials_rsaparams"]) expect(existsSync(join(dir, f))).toBe(false);
    expect((await gh.control.getJob(job.id)).conclusion).toBe("success");
    expect(await runner("eph")).toBeUndefined(); // GitHub removed the registration after its job
  });

  it("JIT: run.sh --jitconfig and ACTIONS_RUNNER_INPUT_JITCONFIG write the config files and run one job", async () => {
    const jit = async (name: string): Promise<string> =>
      (await restPost(gh.apiUrl, gh.token, `/repos/${REPO}/actions/runners/generate-jitconfig`, { name, runner_group_id: 1, labels: [`lk-${name}`] }))
        .encoded_jit_config as string;

    // From the environment (how ARC and lanekeeper pass it): not on argv, and not in the worker's environment.
    const envDir = await freshRunnerDir();
    const envRun = startRunner(envDir, "run.sh", [], runnerEnv({ ACTIONS_RUNNER_INPUT_JITCONFIG: await jit("jit-env") }));
    await listening(envRun);
    expect(await runner("jit-env")).toMatchObject({ status: "online", ephemeral: true, labels: ["lk-jit-env"] });
    const settings = JSON.parse((await readFile(join(envDir, ".runner"), "utf8")).replace(/^\uFEFF/, "")) as { agentName: string };
    expect(settings.agentName).toBe("jit-env");
    const [listener] = await findByComm("Runner.Listener", envDir);
    expect(listener!.argv.join(" ")).not.toContain("jitconfig");
    const job = await gh.control.createJob(REPO, { labels: ["lk-jit-env"], name: "jit job", durationMs: 5000 });
    await envRun.waitForOutput(/Running job: jit job$/m);
    const [worker] = await waitUntil(async () => {
      const w = await findByComm("Runner.Worker", envDir);
      return w.length > 0 ? w : undefined;
    }, { timeoutMs: 20_000, what: "the JIT runner's worker" });
    expect((await procEnviron(worker!.pid)).some((e) => e.startsWith("ACTIONS_RUNNER_INPUT_JITCONFIG="))).toBe(false);
    expect(await envRun.waitForExit()).toEqual({ code: 0, signal: null });
    expect((await gh.control.getJob(job.id)).conclusion).toBe("success");
    expect(existsSync(join(envDir, ".runner"))).toBe(false);
    expect(await runner("jit-env")).toBeUndefined();

    // On argv.
    const argDir = await freshRunnerDir();
    const argRun = startRunner(argDir, "run.sh", ["--jitconfig", await jit("jit-arg")]);
    await listening(argRun);
    expect(await runner("jit-arg")).toMatchObject({ status: "online" });
    await gh.control.createJob(REPO, { labels: ["lk-jit-arg"], durationMs: 100 });
    expect(await argRun.waitForExit()).toEqual({ code: 0, signal: null });

    // A config that does not decode: the listener exits 1, run.sh exits 0.
    const badDir = await freshRunnerDir();
    const bad = await runScript(badDir, "bin/Runner.Listener", ["run", "--jitconfig", Buffer.from("not json").toString("base64")]);
    expect(bad.code).toBe(1);
    const badRun = await runScript(badDir, "run.sh", ["--jitconfig", Buffer.from("[1]").toString("base64")]);
    expect(badRun.code).toBe(0);
    expect(badRun.stdout).toContain("Runner listener exit with terminated error, stop the service, no retry needed.");
  });

  it("a second listener on the same registration retries the session conflict, then exits 5 (run.sh 0)", async () => {
    const dir = await configured("conflict");
    const first = startRunner(dir, "run.sh");
    await listening(first);
    const copy = await freshRunnerDir();
    for (const f of [".runner", ".credentials", ".credentials_rsaparams"]) await writeFile(join(copy, f), await readFile(join(dir, f)));
    const env = runnerEnv({ LK_RUNNER_SESSION_RETRY_MS: "100", LK_RUNNER_SESSION_CONFLICT_LIMIT_MS: "300" });

    const listener = await runScript(copy, "bin/Runner.Listener", ["run"], { env });
    expect(listener.code).toBe(5);
    expect(listener.stderr.split("\n").filter((l) => l === "A session for this runner already exists.").length).toBeGreaterThanOrEqual(3);
    expect(listener.stderr).toContain("Stop retry on SessionConflictException after retried for 0.3 seconds.");

    const viaRunSh = await runScript(copy, "run.sh", [], { env });
    expect(viaRunSh.code).toBe(0);
    expect(viaRunSh.stdout).toContain("Runner listener exit with Session Conflict error, stop the service, no retry needed.");
    // The first one is untouched.
    expect(await runner("conflict")).toMatchObject({ status: "online" });
    expect(first.child.exitCode).toBeNull();
  });

  it("exits 1 (run.sh 0) when the registration is deleted, before or while running", async () => {
    const before = await configured("deleted-before");
    const id = (await runner("deleted-before"))!.id;
    const del = await fetch(`${gh.apiUrl}/repos/${REPO}/actions/runners/${id}`, { method: "DELETE", headers: { authorization: `token ${gh.token}` } });
    expect(del.status).toBe(204);
    const direct = await runScript(before, "bin/Runner.Listener", ["run"]);
    expect(direct.code).toBe(1);
    expect(direct.stderr).toContain(
      "Failed to create a session. The runner registration has been deleted from the server, please re-configure. Runner registrations are automatically deleted for runners that have not connected to the service recently.",
    );
    const viaRunSh = await runScript(before, "run.sh", []);
    expect(viaRunSh.code).toBe(0);
    expect(viaRunSh.stdout).toContain("Runner listener exit with terminated error, stop the service, no retry needed.");

    const during = await configured("deleted-during");
    const run = startRunner(during, "run.sh");
    await listening(run);
    const id2 = (await runner("deleted-during"))!.id;
    await fetch(`${gh.apiUrl}/repos/${REPO}/actions/runners/${id2}`, { method: "DELETE", headers: { authorization: `token ${gh.token}` } });
    expect(await run.waitForExit()).toEqual({ code: 0, signal: null });
    expect(run.output).toContain("The runner registration has been deleted from the server, please re-configure.");
    expect(run.output).toContain("Runner listener exit with terminated error");
  });

  it("after kill -9 the runner stays registered and goes offline once the emulator misses its polls", async () => {
    const dir = await configured("killed");
    const run = startRunner(dir, "bin/Runner.Listener", ["run"]);
    await listening(run);
    expect(await runner("killed")).toMatchObject({ status: "online" });
    run.child.kill("SIGKILL");
    await run.waitForExit();
    await waitForRunner("killed", "offline", (r) => r?.status === "offline", OFFLINE_AFTER_MS + 10_000);
    // A restart opens a new session: online again.
    const again = startRunner(dir, "run.sh");
    await listening(again);
    expect(await runner("killed")).toMatchObject({ status: "online" });
  });

  it("with RUNNER_MANUALLY_TRAP_SIG, SIGTERM to run.sh reaches the listener's process group and cancels the job", async () => {
    const dir = await configured("trap");
    const run = startRunner(dir, "run.sh", [], runnerEnv({ RUNNER_MANUALLY_TRAP_SIG: "1" }));
    await listening(run);
    const job = await gh.control.createJob(REPO, { labels: ["lk-trap"], name: "trapped", durationMs: 120_000 });
    await run.waitForOutput(/Running job: trapped$/m);
    await waitUntil(async () => (await findByComm("Runner.Worker", dir)).length > 0 || undefined, { timeoutMs: 20_000, what: "the worker" });
    run.child.kill("SIGTERM");
    expect(await run.waitForExit()).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/^Exiting\.\.\.$/m); // the trap forwards SIGINT
    expect(run.output).toMatch(/Job trapped completed with result: Canceled/);
    expect((await gh.control.getJob(job.id)).conclusion).toBe("cancelled");
    expect(await findByComm("Runner.Worker", dir)).toEqual([]);
    expect(await findByComm("Runner.Listener", dir)).toEqual([]);
  });

  it("run.sh restarts the listener after a retryable failure (exit 2) and stops on anything else", async () => {
    const notConfigured = await runScript(await freshRunnerDir(), "run.sh", []);
    expect(notConfigured.code).toBe(0);
    expect(notConfigured.stderr).toContain("An error occurred: Not configured. Run config.(sh/cmd) to configure the runner.");
    expect(notConfigured.stdout).toContain("Runner listener exit with terminated error, stop the service, no retry needed.");

    // A broken .credentials makes the listener fail with an unhandled error (exit 2): run.sh loops.
    const dir = await configured("restart");
    const good = await readFile(join(dir, ".credentials"));
    const goodRunner = await readFile(join(dir, ".runner"));
    await writeFile(join(dir, ".credentials"), JSON.stringify({ scheme: "OAuth", data: { authorizationUrl: 7 } }));
    await writeFile(join(dir, ".runner"), JSON.stringify({ agentId: 1 }));
    const run = startRunner(dir, "run.sh", [], runnerEnv({ LK_RUNNER_RESTART_DELAY_S: "0.2" }));
    await run.waitForOutput(/Restarting runner\.\.\.[\s\S]*Restarting runner\.\.\./);
    expect(run.output).toContain("Runner listener exit with retryable error, re-launch runner in 0.2 seconds.");
    // Repair the files: the next round connects.
    await writeFile(join(dir, ".credentials"), good);
    await writeFile(join(dir, ".runner"), goodRunner);
    await listening(run);
    expect(await runner("restart")).toMatchObject({ status: "online" });
  });

  it("runsvc.sh (the service entry) runs the listener under RunnerService.js and stops it on SIGTERM", async () => {
    const dir = await configured("svc");
    const svc = startRunner(dir, "bin/runsvc.sh");
    await listening(svc);
    expect(svc.output).toContain("Starting Runner listener with startup type: service");
    const [listener] = await findByComm("Runner.Listener", dir);
    expect(listener!.argv).toEqual(expect.arrayContaining(["run", "--startuptype", "service"]));
    const host = await procInfo(listener!.ppid);
    expect(host!.argv.some((a) => a.endsWith("bin/RunnerService.js"))).toBe(true);
    expect(host!.ppid).toBe(svc.pid);
    svc.child.kill("SIGTERM");
    expect(await svc.waitForExit()).toEqual({ code: 0, signal: null });
    expect(svc.output).toContain("Runner listener exit with 0 return code, stop the service, no retry needed.");
    expect(await runner("svc")).toMatchObject({ status: "offline" });
  });
});
