import { spawn } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InstanceLock, INSTANCE_LOCK_FILE } from "./instance-lock.js";
import { readProcStat } from "./runtimes/proc-scan.js";

describe("InstanceLock", () => {
  it("refuses a second holder while the first lives, and is free again after release", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lk-lock-"));
    const lock = await InstanceLock.acquire(dir);
    await expect(InstanceLock.acquire(dir)).rejects.toMatchObject({ code: "AGENT_LOCKED" });
    await lock.release();
    await (await InstanceLock.acquire(dir)).release();
  });

  it("takes over the lock of a dead process, and of a reused pid with another start time", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lk-lock-"));
    const child = spawn("true");
    const pid = child.pid ?? 0;
    await new Promise((r) => child.once("exit", r));
    await writeFile(join(dir, INSTANCE_LOCK_FILE), `${pid} 123\n`);
    const a = await InstanceLock.acquire(dir);
    await a.release();
    // Our own pid, but a start time that is not ours: a stale lock from before a pid reuse.
    const me = await readProcStat(process.pid);
    await writeFile(join(dir, INSTANCE_LOCK_FILE), `${process.pid} ${(me?.startTime ?? 0) + 1}\n`);
    const b = await InstanceLock.acquire(dir);
    expect((await readFile(join(dir, INSTANCE_LOCK_FILE), "utf8")).startsWith(`${process.pid} ${me?.startTime}`)).toBe(true);
    await b.release();
  });
});
