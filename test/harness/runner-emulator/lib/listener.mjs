// bin/Runner.Listener: the commands `configure`, `remove`, `run` (and `warmup`, `--version`, `--commit`,
// `--help`, `--check`), with the console lines, files, exit codes and signal handling of the real listener
// (contract section 2). Only the wire protocol differs: it speaks test/harness/docs/runner-protocol.md.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CommandSettings } from "./command-settings.mjs";
import { ConfigError, configure, deleteLocalRunnerConfig, remove, runnerApiBase } from "./configure.mjs";
import {
  CONCLUSION_OF_RESULT,
  DEFAULT_WORK_FOLDER,
  OS_LABEL,
  REGISTRATION_DELETED_MESSAGE,
  RUNNER_COMMIT,
  RUNNER_VERSION,
  ReturnCode,
  TaskResult,
  WORKER_RETURN_CODE_OFFSET,
  timing,
} from "./constants.mjs";
import { openDiag } from "./diag.mjs";
import { TransportError, request } from "./http.mjs";
import { setProcessName } from "./proc-name.mjs";
import { isConfigured, loadEnvFile, readCredentials, readSettings, writeJitConfig } from "./store.mjs";
import { term, utcStamp } from "./terminal.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const USAGE = `
Commands:
 ./config.sh         Configures the runner
 ./config.sh remove  Unconfigures the runner
 ./run.sh            Runs the runner interactively. Does not require any options.

Options:
 --help     Prints the help for each command
 --version  Prints the runner version
 --commit   Prints the runner commit
 --check    Check the runner's network connectivity with GitHub server

Config Options:
 --unattended           Disable interactive prompts for missing arguments. Defaults will be used for missing options
 --url string           Repository to add the runner to. Required if unattended
 --token string         Registration token. Required if unattended
 --name string          Name of the runner to configure (default ${os.hostname() || "myrunner"})
 --runnergroup string   Name of the runner group to add this runner to (defaults to the default runner group)
 --labels string        Custom labels that will be added to the runner. This option is mandatory if --no-default-labels is used.
 --no-default-labels    Disables adding the default labels: 'self-hosted,Linux,X64'
 --local                Removes the runner config files from your local machine. Used as an option to the remove command
 --work string          Relative runner work directory (default _work)
 --replace              Replace any existing runner with the same name (default false)
 --pat                  GitHub personal access token with repo scope. Used for checking network connectivity when executing \`./run.sh --check\`
 --disableupdate        Disable self-hosted runner automatic update to the latest released version\`
 --ephemeral            Configure the runner to only take one job and then let the service un-configure the runner after the job finishes (default false)

Examples:
 Check GitHub server network connectivity:
  ./run.sh --check --url <url> --pat <pat>
 Configure a runner non-interactively:
  ./config.sh --unattended --url <url> --token <token>
 Configure a runner non-interactively, replacing any existing runner with the same name:
  ./config.sh --unattended --url <url> --token <token> --replace [--name <name>]
 Configure a runner non-interactively with three extra labels:
  ./config.sh --unattended --url <url> --token <token> --labels L1,L2,L3`;

/** Thrown out of the message loop when the registration is gone; the listener exits 1. */
class RegistrationGone extends Error {}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** One `run`: a session with the emulator, the message loop, one worker per job. */
class Listener {
  constructor(settings, credentials, { runOnce, diag }) {
    this.settings = settings;
    this.credentials = credentials;
    this.runOnce = runOnce;
    this.diag = diag;
    this.timing = timing();
    this.base = runnerApiBase(settings, credentials);
    this.auth = `Bearer ${credentials?.data?.token ?? ""}`;
    this.sessionId = undefined;
    this.stopping = false;
    this.stop = new AbortController();
    this.job = undefined; // {id, name, child, cancelled, done: Promise}
    this.runOnceJobReceived = false;
    this.runOnceJobCompleted = false;
    this.jobTask = undefined;
  }

  /** Starts shutting down: cancels the long poll, any wait, and (in `run`'s finally) the running job. */
  shutdown(reason) {
    if (this.stopping) return;
    this.stopping = true;
    this.diag.info(`shutdown: ${reason}`);
    this.stop.abort();
  }

  async call(method, route, body, { timeoutMs, signal } = {}) {
    return request(method, `${this.base}${route}`, {
      auth: this.auth,
      body,
      signal,
      timeoutMs: timeoutMs ?? this.timing.requestTimeoutMs,
    });
  }

  /** `MessageListener.CreateSessionAsync`: "ok" | "conflict" | "failure" | "cancelled". */
  async createSession() {
    let conflicts = 0;
    let encounteringError = false;
    for (;;) {
      if (this.stopping) return "cancelled";
      let res;
      try {
        res = await this.call("POST", "/sessions", { agentId: this.settings.agentId, version: RUNNER_VERSION, os: OS_LABEL }, { signal: this.stop.signal });
      } catch (e) {
        if (this.stopping) return "cancelled";
        const message = e instanceof Error ? e.message : String(e);
        this.diag.warn(`create session: ${message}`);
        if (!encounteringError) {
          term.error(`${utcStamp()}: Runner connect error: ${message}. Retrying until reconnected.`);
          encounteringError = true;
        }
        await sleep(this.timing.sessionRetryMs, this.stop.signal);
        continue;
      }
      term.line();
      term.success("Connected to GitHub");
      term.line();
      this.diag.info(`create session -> ${res.status}`);
      if (res.status === 201 || res.status === 200) {
        this.sessionId = res.body?.sessionId;
        if (encounteringError) term.line(`${utcStamp()}: Runner reconnected.`);
        return "ok";
      }
      if (res.status === 404) {
        term.error(REGISTRATION_DELETED_MESSAGE);
        return "failure";
      }
      if (res.status === 409) {
        term.error("A session for this runner already exists.");
        conflicts += 1;
        if (conflicts > 1 && conflicts * this.timing.sessionRetryMs >= this.timing.sessionConflictLimitMs) {
          term.error(`Stop retry on SessionConflictException after retried for ${this.timing.sessionConflictLimitMs / 1000} seconds.`);
          return "conflict";
        }
      } else if (res.status === 401 || res.status === 403) {
        term.error(`Failed to create session. ${res.body?.message ?? res.text}`);
        return "failure";
      } else if (!encounteringError) {
        term.error(`${utcStamp()}: Runner connect error: ${res.body?.message ?? `HTTP ${res.status}`}. Retrying until reconnected.`);
        encounteringError = true;
      }
      await sleep(this.timing.sessionRetryMs, this.stop.signal);
    }
  }

  /** `GetNextMessageAsync`: a message, or null when nothing came (or we are stopping). */
  async nextMessage() {
    let encounteringError = false;
    while (!this.stopping) {
      let res;
      try {
        res = await this.call("GET", `/sessions/${encodeURIComponent(this.sessionId)}/message?wait_ms=${this.timing.pollWaitMs}`, undefined, {
          signal: this.stop.signal,
          timeoutMs: this.timing.pollWaitMs + this.timing.requestTimeoutMs,
        });
      } catch (e) {
        if (this.stopping) return null;
        const message = e instanceof Error ? e.message : String(e);
        if (!encounteringError) {
          term.error(`${utcStamp()}: Runner connect error: ${message}. Retrying until reconnected.`);
          encounteringError = true;
        }
        await sleep(this.timing.pollRetryMs, this.stop.signal);
        continue;
      }
      if (encounteringError && res.status < 500) {
        term.line(`${utcStamp()}: Runner reconnected.`);
        encounteringError = false;
      }
      if (res.status === 200) return res.body ?? null;
      if (res.status === 204) return null;
      if (res.status === 404 && this.runOnceJobReceived) {
        // The one job of an ephemeral runner is done or ending: its registration is deleted with the job's
        // completion, which also ends this poll. The job's own completion drives the exit (code 0).
        await this.jobTask;
        return null;
      }
      if (res.status === 404) {
        // TaskAgentSessionExpiredException: the real listener recreates its session once; if the
        // registration itself is gone, that fails with the "registration has been deleted" line.
        this.diag.warn("session expired or registration deleted; recreating the session");
        const created = await this.createSession();
        if (created === "ok") continue;
        if (created === "cancelled") return null;
        throw new RegistrationGone();
      }
      if (res.status === 401 || res.status === 403) {
        term.error(`Failed to get the next message. ${res.body?.message ?? res.text}`);
        throw new RegistrationGone();
      }
      if (!encounteringError) {
        term.error(`${utcStamp()}: Runner connect error: ${res.body?.message ?? `HTTP ${res.status}`}. Retrying until reconnected.`);
        encounteringError = true;
      }
      await sleep(this.timing.pollRetryMs, this.stop.signal);
    }
    return null;
  }

  /** Reports a job result; retries transport errors a few times, gives up on 4xx. */
  async reportCompleted(jobId, conclusion) {
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        const res = await this.call("POST", `/jobs/${encodeURIComponent(jobId)}/completed`, { sessionId: this.sessionId, conclusion });
        this.diag.info(`job ${jobId} completed (${conclusion}) -> ${res.status}`);
        if (res.status < 500) return;
      } catch (e) {
        this.diag.warn(`job ${jobId} completion report failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      await sleep(Math.min(1000 * attempt, 5000));
    }
  }

  /** `JobDispatcher.Run`: mark started, spawn `Runner.Worker spawnclient 3 4`, wait, report. */
  async runJob(job) {
    let started;
    try {
      started = await this.call("POST", `/jobs/${encodeURIComponent(job.id)}/started`, { sessionId: this.sessionId });
    } catch (e) {
      this.diag.error(`job ${job.id} start report failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (started.status !== 204 && started.status !== 200) {
      this.diag.warn(`Skipping message Job ${job.id}: start answered ${started.status}`);
      return;
    }
    term.line(`${utcStamp()}: Running job: ${job.name}`);
    const workerPath = path.join(ROOT, "bin", "Runner.Worker");
    const child = spawn(process.execPath, [workerPath, "spawnclient", "3", "4"], {
      cwd: ROOT,
      env: process.env,
      stdio: ["ignore", "ignore", "inherit", "pipe", "pipe"],
    });
    const current = { id: job.id, name: job.name, child, cancelled: false };
    this.job = current;
    const toWorker = child.stdio[3];
    toWorker.on("error", () => {}); // a worker that died early must not crash the listener
    child.stdio[4]?.on("error", () => {});
    child.stdio[4]?.resume();
    const exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => resolve({ code, signal }));
      child.on("error", (e) => {
        this.diag.error(`worker spawn failed: ${e.message}`);
        resolve({ code: null, signal: null });
      });
    });
    current.exited = exited;
    toWorker.write(
      `${JSON.stringify({ messageType: "PipelineAgentJobRequest", workFolder: this.settings.workFolder ?? DEFAULT_WORK_FOLDER, body: job })}\n`,
    );
    this.diag.info(`job ${job.id} '${job.name}' dispatched to worker pid ${child.pid}`);
    const { code, signal } = await exited;
    let result = "Failed";
    if (current.cancelled) {
      result = "Canceled";
    } else if (typeof code === "number") {
      const r = Object.entries(TaskResult).find(([, v]) => v === code - WORKER_RETURN_CODE_OFFSET);
      if (r) result = r[0];
    }
    this.diag.info(`worker exited code=${code} signal=${signal} -> ${result}`);
    await this.reportCompleted(job.id, CONCLUSION_OF_RESULT[result] ?? "failure");
    term.line(`${utcStamp()}: Job ${job.name} completed with result: ${result}`);
    this.job = undefined;
  }

  /** `EnsureDispatchFinished(cancelRunningJob: true)`: tell the worker, wait, then kill it if it lingers. */
  async cancelRunningJob() {
    const current = this.job;
    if (!current) return;
    current.cancelled = true;
    try {
      current.child.stdio[3].write(`${JSON.stringify({ messageType: "RunnerShutdown" })}\n`);
    } catch {
      // The worker may already be gone.
    }
    const timer = setTimeout(() => {
      this.diag.warn(`worker ${current.child.pid} ignored the cancellation; killing it`);
      current.child.kill("SIGKILL");
    }, this.timing.workerCancelTimeoutMs);
    await current.exited;
    clearTimeout(timer);
  }

  /** `Runner.RunAsync`. Returns the listener's exit code. */
  async run() {
    const created = await this.createSession();
    if (created === "conflict") return ReturnCode.SessionConflict;
    if (created === "failure") return ReturnCode.TerminatedError;
    if (created === "cancelled") return ReturnCode.Success;

    term.line(`Current runner version: '${RUNNER_VERSION}'`);
    term.line(`${utcStamp()}: Listening for Jobs`);
    try {
      fs.mkdirSync(path.resolve(ROOT, this.settings.workFolder ?? DEFAULT_WORK_FOLDER), { recursive: true });
    } catch {
      // A missing work folder only matters to real jobs.
    }

    let code = ReturnCode.Success;
    try {
      while (!this.stopping) {
        const message = await this.nextMessage();
        if (!message) continue;
        if (message.type !== "job" || !message.job) {
          this.diag.warn(`ignoring message of type ${String(message.type)}`);
          continue;
        }
        if (this.job || this.runOnceJobReceived) {
          this.diag.warn(`skipping job ${message.job.id}: busy`);
          continue;
        }
        if (this.runOnce) this.runOnceJobReceived = true;
        this.jobTask = this.runJob(message.job)
          .catch((e) => this.diag.error(`job failed in the listener: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`))
          .then(() => {
          if (this.runOnce && !this.stopping) {
            this.runOnceJobCompleted = true;
            this.shutdown("one-time job finished");
          }
        });
      }
    } catch (e) {
      if (e instanceof RegistrationGone) code = ReturnCode.TerminatedError;
      else throw e;
    } finally {
      await this.cancelRunningJob();
      await this.jobTask;
      if (this.sessionId !== undefined) {
        try {
          const res = await this.call("DELETE", `/sessions/${encodeURIComponent(this.sessionId)}`);
          this.diag.info(`delete session -> ${res.status}`);
        } catch (e) {
          this.diag.warn(`delete session failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      if (this.runOnce && this.runOnceJobCompleted && this.settings.ephemeral) {
        deleteLocalRunnerConfig(ROOT);
      }
    }
    return code;
  }
}

async function runCommand(cmd, diag) {
  const jit = cmd.takeArg("jitconfig");
  if (jit !== undefined) {
    try {
      writeJitConfig(ROOT, jit);
      diag.info("JIT config written");
    } catch (e) {
      term.error(e instanceof Error ? e.message : String(e));
      return ReturnCode.TerminatedError;
    }
  }
  if (!isConfigured(ROOT)) {
    term.error("An error occurred: Not configured. Run config.(sh/cmd) to configure the runner.");
    return ReturnCode.TerminatedError;
  }
  const settings = readSettings(ROOT);
  const credentials = readCredentials(ROOT);
  if (!settings || !credentials) {
    term.error("An error occurred: Not configured. Run config.(sh/cmd) to configure the runner.");
    return ReturnCode.TerminatedError;
  }
  if (cmd.command !== "run") {
    term.line(USAGE);
    return ReturnCode.Success;
  }
  const once = cmd.flag("once");
  if (once) {
    term.line("Warning: '--once' is going to be deprecated in the future, please consider using '--ephemeral' during runner registration.");
    term.line("https://docs.github.com/en/actions/hosting-your-own-runners/autoscaling-with-self-hosted-runners#using-ephemeral-runners-for-autoscaling");
  }
  const listener = new Listener(settings, credentials, { runOnce: once || settings.ephemeral === true, diag });
  // Ctrl-C prints "Exiting..." (CtrlCHandler); SIGTERM (.NET "unloading") shuts down silently. Both cancel
  // a running job, delete the session and exit 0.
  process.on("SIGINT", () => {
    term.line("Exiting...");
    listener.shutdown("SIGINT");
  });
  process.on("SIGTERM", () => listener.shutdown("SIGTERM"));
  return listener.run();
}

/** Entry point of bin/Runner.Listener. Exits the process with the listener's return code. */
export async function main(argv = process.argv.slice(2)) {
  setProcessName("Runner.Listener");
  loadEnvFile(ROOT);
  const cmd = new CommandSettings(argv);
  const diag = openDiag(ROOT, "Runner");
  diag.info(`Runner.Listener ${RUNNER_VERSION} pid ${process.pid} command '${cmd.command}'`);

  const unknowns = cmd.unknowns();
  if (unknowns.length > 0) {
    const list = unknowns.join(", ");
    term.error(
      cmd.command === ""
        ? `This command does not recognize the command-line input arguments: '${list}'. For usage refer to: .\\config.cmd --help or ./config.sh --help`
        : `Unrecognized command-line input arguments for command ${cmd.command}: '${list}'. For usage refer to: .\\config.cmd --help or ./config.sh --help`,
    );
  }

  let code;
  if (cmd.flag("help")) {
    term.line(USAGE);
    code = ReturnCode.Success;
  } else if (cmd.flag("version")) {
    term.line(RUNNER_VERSION);
    code = ReturnCode.Success;
  } else if (cmd.flag("commit")) {
    term.line(RUNNER_COMMIT);
    code = ReturnCode.Success;
  } else if (cmd.flag("check")) {
    term.line("The runner emulator has no network checks; nothing to do.");
    code = ReturnCode.Success;
  } else if (cmd.command === "configure" || cmd.command === "remove") {
    // During configuration Ctrl-C exits at once with TerminatedError.
    const abort = () => {
      term.line("Exiting...");
      process.exit(ReturnCode.TerminatedError);
    };
    process.on("SIGINT", abort);
    process.on("SIGTERM", abort);
    try {
      if (cmd.command === "configure") await configure(ROOT, cmd, diag);
      else await remove(ROOT, cmd, diag);
      code = ReturnCode.Success;
    } catch (e) {
      diag.error(e instanceof Error ? e.message : String(e));
      term.error(e instanceof ConfigError || e instanceof TransportError ? e.message : `An error occurred: ${e instanceof Error ? e.message : String(e)}`);
      code = ReturnCode.TerminatedError;
    }
  } else if (cmd.command === "warmup") {
    code = ReturnCode.Success;
  } else {
    try {
      code = await runCommand(cmd, diag);
    } catch (e) {
      diag.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      term.error(`An error occurred: ${e instanceof Error ? e.message : String(e)}`);
      code = ReturnCode.RetryableError;
    }
  }
  diag.info(`exit ${code}`);
  process.exit(code);
}
