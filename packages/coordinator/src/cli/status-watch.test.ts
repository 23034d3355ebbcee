import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CoordinatorContext } from "../context/coordinator-context.js";
import type { CliIo } from "./cli-io.js";
import { CliError } from "./cli-errors.js";
import { ExitCode } from "./exit-codes.js";
import { parseWatchInterval, runStatusWatch, type WatchOptions } from "./status-watch.js";

// The watch loop with a stand-in coordinator and round; the real thing (nats-server, GitHub emulator, SIGINT to the
// built CLI) is test/integration/coordinator-lanes-view-cli.test.ts.
let dir = "";
let policy = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-watch-"));
  policy = join(dir, "lanekeeper.yaml");
  await writeFile(
    policy,
    "github:\n  apiUrl: http://127.0.0.1:1\n  auth:\n    tokenEnv: LK_NONE\ncoordinator:\n  keyFile: /nonexistent/k.pem\n  natsUrl: nats://127.0.0.1:1\nhosts: {}\nscopes: {}\npools: {}\nlanes: []\n",
  );
});
afterAll(async () => {
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

function io(): CliIo & { stdout: () => string; stderr: () => string } {
  let out = "";
  let err = "";
  return { out: (t) => void (out += t), err: (t) => void (err += t), env: {}, cwd: dir, now: () => 0, stdout: () => out, stderr: () => err };
}

function fakeContext(): { ctx: CoordinatorContext; closed: () => number } {
  let closed = 0;
  const ctx = {
    close: () => {
      closed += 1;
      return Promise.resolve();
    },
  } as unknown as CoordinatorContext;
  return { ctx, closed: () => closed };
}

describe("runStatusWatch", () => {
  it("runs rounds until stopped, shows a failed round's error and goes on, then closes the connection and exits 0", async () => {
    const stop = new AbortController();
    const fake = fakeContext();
    const waits: (number | undefined)[] = [];
    let rounds = 0;
    const out = io();
    const code = await runStatusWatch<WatchOptions>({ policy, interval: 1_000, inventoryWait: 4_000 }, out, { open: () => Promise.resolve(fake.ctx), signal: stop.signal }, (_ctx, o, rio) => {
      rounds += 1;
      waits.push(o.inventoryWait);
      if (rounds === 2) return Promise.reject(new CliError("HOST_NOT_FOUND", "the host is on fire"));
      rio.out(`round body ${rounds}\n`);
      // Stopped during the pause after round 3 (a stop during a round drops that round).
      if (rounds === 3) setTimeout(() => stop.abort(), 100);
      return Promise.resolve(ExitCode.OK);
    });
    expect(code).toBe(ExitCode.OK);
    expect(rounds).toBe(3);
    expect(fake.closed()).toBe(1);
    expect(waits).toEqual([4_000, 0, 0]);
    expect(out.stdout()).toMatch(/round 1 at [^\n]*\n\nround body 1\n/);
    expect(out.stderr()).toContain("error: the host is on fire (HOST_NOT_FOUND)");
    expect(out.stderr()).toContain("still watching: next round in 1s");
    expect(out.stdout()).toContain("round body 3\n");
  }, 15_000);

  it("bounds each round by --timeout: a round that never answers is a COMMAND_TIMEOUT, and the next round runs", async () => {
    const stop = new AbortController();
    const fake = fakeContext();
    let rounds = 0;
    const out = io();
    const code = await runStatusWatch<WatchOptions>({ policy, interval: 1_000, timeout: 300 }, out, { open: () => Promise.resolve(fake.ctx), signal: stop.signal }, (_c, _o, rio) => {
      rounds += 1;
      if (rounds === 1) return new Promise<never>(() => undefined);
      rio.out("answered\n");
      setTimeout(() => stop.abort(), 100);
      return Promise.resolve(ExitCode.OK);
    });
    expect(code).toBe(ExitCode.OK);
    expect(out.stderr()).toMatch(/no answer within 300ms while observing NATS and GitHub \(COMMAND_TIMEOUT\)/);
    expect(out.stdout()).toContain("answered\n");
    expect(fake.closed()).toBe(1);
  }, 15_000);

  it("keeps trying to connect when the opening fails, and stops at once when told to", async () => {
    const stop = new AbortController();
    let opens = 0;
    const out = io();
    const code = await runStatusWatch<WatchOptions>(
      { policy, interval: 1_000, json: true },
      out,
      {
        open: () => {
          opens += 1;
          if (opens === 2) setTimeout(() => stop.abort(), 50);
          return Promise.reject(new CliError("COMMAND_TIMEOUT", "NATS is not there"));
        },
        signal: stop.signal,
      },
      () => Promise.resolve(ExitCode.OK),
    );
    expect(code).toBe(ExitCode.OK);
    expect(opens).toBe(2);
    // --json: one error line per failed round on stdout.
    const lines = out.stdout().trim().split("\n").map((l) => JSON.parse(l) as { error: { code: string } });
    expect(lines.map((l) => l.error.code)).toEqual(["COMMAND_TIMEOUT", "COMMAND_TIMEOUT"]);
  }, 15_000);

  it("a policy that cannot be read ends the watch with its error", async () => {
    await expect(runStatusWatch<WatchOptions>({ policy: join(dir, "missing.yaml") }, io(), { signal: new AbortController().signal }, () => Promise.resolve(ExitCode.OK))).rejects.toMatchObject({
      code: "POLICY_UNREADABLE",
    });
  });
});

describe("parseWatchInterval", () => {
  it("takes durations of at least 1s", () => {
    expect(parseWatchInterval("5s")).toBe(5_000);
    expect(() => parseWatchInterval("200ms")).toThrow(/at least 1s/);
    expect(() => parseWatchInterval("soon")).toThrow(/duration/);
  });
});
