// bin/Runner.Worker: one process per job, started by the listener as `Runner.Worker spawnclient <in> <out>`.
// It lives exactly as long as the job: `durationMs` from the job message, then it exits with
// 100 + TaskResult (100 Succeeded, 102 Failed, 103 Canceled), which the listener reports to the emulator.
//
// Cancellation comes from the listener over the pipe (RunnerShutdown/CancelRequest), as with the real
// worker; SIGINT is ignored for that reason (Ctrl-C reaches the whole process group, and the listener
// decides). SIGTERM, or the pipe closing because the listener died, cancels the job at once.

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { RESULT_OF_CONCLUSION, TaskResult, WORKER_RETURN_CODE_OFFSET } from "./constants.mjs";
import { openDiag } from "./diag.mjs";
import { setProcessName } from "./proc-name.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export function main(argv = process.argv.slice(2)) {
  setProcessName("Runner.Worker");
  const diag = openDiag(ROOT, "Worker");
  if ((argv[0] ?? "").toLowerCase() !== "spawnclient" || argv.length < 3) {
    process.stderr.write("Runner.Worker is started by Runner.Listener: Runner.Worker spawnclient <pipeIn> <pipeOut>\n");
    process.exit(1);
  }
  const inFd = Number(argv[1]);
  const outFd = Number(argv[2]);
  let finished = false;
  let timer;
  let job;

  const finish = (result, why) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    diag.info(`job ${job?.id ?? "?"} finished: ${result} (${why})`);
    try {
      fs.writeSync(outFd, `${JSON.stringify({ messageType: "JobCompleted", result })}\n`);
    } catch {
      // The listener may be gone; the exit code still carries the result.
    }
    process.exit(WORKER_RETURN_CODE_OFFSET + TaskResult[result]);
  };

  process.on("SIGINT", () => diag.info("SIGINT ignored; waiting for the listener's cancellation"));
  process.on("SIGTERM", () => finish("Canceled", "SIGTERM"));

  const input = new net.Socket({ fd: inFd, readable: true, writable: false });
  let buffered = "";
  input.setEncoding("utf8");
  input.on("data", (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        diag.error("unreadable message from the listener");
        continue;
      }
      if (msg.messageType === "PipelineAgentJobRequest" && job === undefined) {
        job = msg.body ?? {};
        const ms = Math.max(0, Number(job.durationMs) || 0);
        const result = RESULT_OF_CONCLUSION[String(job.conclusion ?? "success").toLowerCase()] ?? "Succeeded";
        diag.info(`job ${job.id} '${job.name}' starts, ${ms} ms, result ${result}`);
        try {
          fs.mkdirSync(path.resolve(ROOT, msg.workFolder ?? "_work", "_temp"), { recursive: true });
        } catch {
          // The work folder is cosmetic here.
        }
        timer = setTimeout(() => finish(result, "job done"), ms);
      } else if (msg.messageType === "CancelRequest" || msg.messageType === "RunnerShutdown" || msg.messageType === "OperatingSystemShutdown") {
        diag.info(`The runner has received a shutdown signal. (${msg.messageType})`);
        finish("Canceled", msg.messageType);
      }
    }
  });
  const gone = () => finish("Canceled", "listener pipe closed");
  input.on("end", gone);
  input.on("close", gone);
  input.on("error", gone);
}
