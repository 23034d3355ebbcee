import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CliIo } from "./cli-io.js";
import { cliLogger } from "./cli-logger.js";

function io(env: Record<string, string>, cwd = "/"): CliIo & { errText: () => string } {
  let err = "";
  return { out: () => undefined, err: (s) => void (err += s), env, cwd, now: () => 0, errText: () => err };
}

describe("cliLogger", () => {
  it("renders human lines on stderr by default, at warn unless LANEKEEPER_LOG_LEVEL says otherwise", () => {
    const quiet = io({});
    cliLogger(quiet).info("hidden");
    cliLogger(quiet).warn({ scope: "acme/api" }, "listing failed");
    expect(quiet.errText()).toBe("warn: listing failed (scope=acme/api)\n");
    const chatty = io({ LANEKEEPER_LOG_LEVEL: "info" });
    cliLogger(chatty).info("shown");
    expect(chatty.errText()).toBe("info: shown\n");
  });

  it("keeps JSON lines on stderr for serve", () => {
    const d = io({});
    cliLogger(d, "json").warn("leader lock unavailable");
    expect(JSON.parse(d.errText())).toMatchObject({ level: 40, component: "lanekeeper", msg: "leader lock unavailable" });
  });

  it("appends JSON lines to LANEKEEPER_LOG_FILE (relative to the working directory), 0600, stderr left alone", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lk-cli-logger-"));
    try {
      const d = io({ LANEKEEPER_LOG_FILE: "lk.log" }, dir);
      cliLogger(d).warn("one");
      cliLogger(d, "json").warn("two");
      expect(d.errText()).toBe("");
      const lines = (await readFile(join(dir, "lk.log"), "utf8")).trim().split("\n").map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(lines).toEqual(["one", "two"]);
      expect((await stat(join(dir, "lk.log"))).mode & 0o777).toBe(0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("says once when the log file cannot be written, then logs on stderr", () => {
    const d = io({ LANEKEEPER_LOG_FILE: "/nonexistent-dir/lk.log" });
    const log = cliLogger(d);
    log.warn("first");
    log.warn("second");
    expect(d.errText()).toBe("warn: cannot write the log file /nonexistent-dir/lk.log (ENOENT); logging here instead\nwarn: first\nwarn: second\n");
  });
});
