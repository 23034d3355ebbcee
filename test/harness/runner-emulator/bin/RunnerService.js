#!/usr/bin/env node
// RunnerService.js of the lanekeeper runner emulator: the service host that runsvc.sh starts under systemd.
// Like actions/runner's bin/RunnerService.js it runs `Runner.Listener run --startuptype service` and maps
// its exit code (contract 2.4): 0, 1 and 5 stop the service; 2, 3 and 4 restart after 5 s; any other code
// restarts, up to 10 consecutive times. "Listening for Jobs" in the output resets that counter. SIGINT
// or SIGTERM is passed to the listener as SIGINT, which gets 30 s before SIGKILL.
"use strict";

const childProcess = require("node:child_process");
const path = require("node:path");

const listenerPath = path.join(__dirname, "Runner.Listener");
// Test knobs (README "Runner emulator"): the restart pause and the kill grace.
const restartDelayMs = Math.round(Number(process.env.LK_RUNNER_RESTART_DELAY_S ?? "5") * 1000);
const killAfterMs = Number(process.env.LK_RUNNER_SERVICE_KILL_MS ?? "30000");

let listener = null;
let stopping = false;
let unknownFailureRetryCount = 0;
let retryableFailureCount = 0;

function runService() {
  if (stopping) return;
  listener = childProcess.spawn(listenerPath, ["run", "--startuptype", "service"], {
    env: process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  console.log(`Started listener process, pid: ${listener.pid}`);
  listener.stdout.on("data", (data) => {
    const text = data.toString("utf8");
    if (text.includes("Listening for Jobs")) {
      unknownFailureRetryCount = 0;
      retryableFailureCount = 0;
    }
    process.stdout.write(text);
  });
  listener.stderr.on("data", (data) => process.stdout.write(data.toString("utf8")));
  listener.on("error", (err) => console.log(`Failed to start the listener: ${err.message}`));
  listener.on("close", (code, signal) => {
    listener = null;
    console.log(`Runner listener exited with error code ${code === null ? signal : code}`);
    if (code === 0) {
      console.log("Runner listener exit with 0 return code, stop the service, no retry needed.");
      stopping = true;
    } else if (code === 1) {
      console.log("Runner listener exit with terminated error, stop the service, no retry needed.");
      stopping = true;
    } else if (code === 2) {
      console.log("Runner listener exit with retryable error, re-launch runner in 5 seconds.");
      unknownFailureRetryCount = 0;
      retryableFailureCount++;
      if (retryableFailureCount >= 10) {
        console.error("Stopping the runner after 10 consecutive re-tryable failures");
        stopping = true;
      }
    } else if (code === 3 || code === 4) {
      console.log("Runner listener exit because of updating, re-launch runner in 5 seconds.");
      unknownFailureRetryCount = 0;
      retryableFailureCount = 0;
    } else if (code === 5) {
      console.log("Runner listener exit with Session Conflict error, stop the service, no retry needed.");
      stopping = true;
    } else {
      const messagePrefix = "Runner listener exit with undefined return code";
      unknownFailureRetryCount++;
      retryableFailureCount = 0;
      if (unknownFailureRetryCount >= 10) {
        console.error(`${messagePrefix}, exiting service after 10 consecutive failures`);
        stopping = true;
      } else {
        console.log(`${messagePrefix}, re-launch runner in 5 seconds.`);
      }
    }
    if (stopping) {
      process.exit(0);
    }
    setTimeout(runService, restartDelayMs);
  });
}

function gracefulShutdown() {
  console.log("Shutting down runner listener");
  stopping = true;
  if (listener) {
    console.log("Sending SIGINT to runner listener to stop");
    listener.kill("SIGINT");
    const l = listener;
    setTimeout(() => {
      if (l.exitCode === null && l.signalCode === null) {
        console.log("Sending SIGKILL to runner listener");
        l.kill("SIGKILL");
      }
    }, killAfterMs).unref();
  } else {
    process.exit(0);
  }
}

process.on("SIGINT", gracefulShutdown);
process.on("SIGTERM", gracefulShutdown);

console.log("Starting Runner listener with startup type: service");
runService();
