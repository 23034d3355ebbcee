import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { pidExists, runCommand, terminate, waitForExit, waitUntil } from "../src/process-util.js";

describe("process utilities of the launchers", () => {
  it("runCommand returns any exit code with the output, and never uses a shell", async () => {
    const r = await runCommand("sh", ["-c", 'echo out; echo err >&2; exit 3']);
    expect(r).toEqual({ code: 3, signal: null, stdout: "out\n", stderr: "err\n" });
    const literal = await runCommand("echo", ["$HOME", "; rm -rf /"]);
    expect(literal.stdout).toBe("$HOME ; rm -rf /\n");
    const piped = await runCommand("cat", [], { input: "to stdin" });
    expect(piped.stdout).toBe("to stdin");
  });

  it("runCommand rejects when the program is missing or too slow", async () => {
    await expect(runCommand("/nonexistent/lk-binary", [])).rejects.toMatchObject({ code: "COMMAND_FAILED" });
    await expect(runCommand("sleep", ["30"], { timeoutMs: 200 })).rejects.toMatchObject({
      code: "COMMAND_FAILED",
      message: expect.stringContaining("did not finish within 200 ms"),
    });
  });

  it("waitUntil returns the first truthy value, times out with diagnostics, and stops early on abort", async () => {
    let n = 0;
    expect(await waitUntil(() => (++n >= 3 ? `done after ${n}` : undefined), { timeoutMs: 5000, what: "n" })).toBe(
      "done after 3",
    );
    await expect(
      waitUntil(() => false, { timeoutMs: 100, what: "the impossible", diagnostics: () => "log tail here" }),
    ).rejects.toMatchObject({
      code: "START_TIMEOUT",
      message: expect.stringMatching(/the impossible[\s\S]*log tail here/),
    });
    const started = Date.now();
    await expect(
      waitUntil(() => false, { timeoutMs: 60_000, what: "x", abort: () => "the process exited" }),
    ).rejects.toMatchObject({ code: "LAUNCH_FAILED", message: expect.stringContaining("the process exited") });
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("terminate escalates to SIGKILL when the process ignores SIGTERM", async () => {
    const child = spawn("sh", ["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"], { stdio: ["ignore", "pipe", "ignore"] });
    await new Promise<void>((r) => child.stdout.once("data", () => r()));
    const status = await terminate(child, { graceMs: 300 });
    expect(status.signal).toBe("SIGKILL");
    expect(pidExists(child.pid!)).toBe(false);
    expect(await waitForExit(child, 10)).toEqual(status);
  });
});
