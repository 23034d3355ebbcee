import { describe, expect, it } from "vitest";
import { KeyedMutex, SerialQueue } from "./keyed-mutex.js";

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("KeyedMutex", () => {
  it("serializes one key and lets other keys run concurrently", async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const op = (key: string, name: string, ms: number) =>
      m.run(key, async () => {
        log.push(`${name}:start`);
        await tick(ms);
        log.push(`${name}:end`);
        return name;
      });
    const results = await Promise.all([op("a", "a1", 30), op("a", "a2", 1), op("b", "b1", 1)]);
    expect(results).toEqual(["a1", "a2", "b1"]);
    expect(log.indexOf("a1:end")).toBeLessThan(log.indexOf("a2:start"));
    expect(log.indexOf("b1:end")).toBeLessThan(log.indexOf("a1:end"));
  });

  it("keeps going after a failed operation and forgets idle keys", async () => {
    const m = new KeyedMutex();
    await expect(m.run("a", () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    await expect(m.run("a", () => Promise.resolve(7))).resolves.toBe(7);
    await tick(0);
    expect(m.busy("a")).toBe(false);
  });
});

describe("SerialQueue", () => {
  it("runs operations one at a time in call order, past failures, and reports idle", async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    const op = (name: string, ms: number, fail = false) =>
      q.run(async () => {
        log.push(`${name}:start`);
        await tick(ms);
        log.push(`${name}:end`);
        if (fail) throw new Error(name);
        return name;
      });
    const a = op("a", 20);
    const b = op("b", 1, true);
    const c = op("c", 1);
    await expect(b).rejects.toThrow("b");
    expect(await Promise.all([a, c])).toEqual(["a", "c"]);
    expect(log).toEqual(["a:start", "a:end", "b:start", "b:end", "c:start", "c:end"]);
    const late = op("d", 10);
    await q.idle();
    expect(log.at(-1)).toBe("d:end");
    await expect(late).resolves.toBe("d");
  });
});
