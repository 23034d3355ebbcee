import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { isRunnerWorkerArgv, isSameProcess, parseProcStat, processTree, readProcStat } from "./proc-scan.js";

describe("proc-scan", () => {
  it("parses stat lines whose command name has spaces and parentheses", () => {
    expect(parseProcStat("123 (a (b) c) S 45 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9876 0 0")).toEqual({ pid: 123, ppid: 45, startTime: 9876 });
  });

  it("recognizes the runner's worker and nothing else", () => {
    expect(isRunnerWorkerArgv(["/home/runner/bin/Runner.Worker", "spawnclient", "3", "4"])).toBe(true);
    expect(isRunnerWorkerArgv(["node", "/lanes/l1/runner/bin/Runner.Worker", "spawnclient"])).toBe(true);
    expect(isRunnerWorkerArgv(["node", "/x/bin/Runner.Listener", "run"])).toBe(false);
    expect(isRunnerWorkerArgv(["grep", "Runner.Worker"])).toBe(false);
    expect(isRunnerWorkerArgv(["pgrep", "-f", "Runner.Worker"])).toBe(false);
  });

  it("walks a real process tree and tells a live process from a reused pid", async () => {
    const child = spawn("sh", ["-c", "sleep 30 & wait"], { stdio: "ignore", detached: true });
    await new Promise((r) => setTimeout(r, 200));
    const pid = child.pid ?? 0;
    const tree = await processTree(process.pid);
    expect(tree).toContain(pid);
    expect((await processTree(pid)).length).toBeGreaterThanOrEqual(2);
    const st = await readProcStat(pid);
    expect(await isSameProcess(pid, st?.startTime ?? -1)).toBe(true);
    expect(await isSameProcess(pid, (st?.startTime ?? 0) + 1)).toBe(false);
    process.kill(-pid, "SIGKILL");
  });
});
