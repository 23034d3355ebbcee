// Policy reload of a running `lanekeeper serve` (a child process, as an operator runs it) against the real world:
// nats-server, the GitHub emulator and an agent driving systemd in a sandbox. A lane count changed in the file is
// acted on without a restart (the editor's save: a new file renamed over the old one); SIGHUP reloads; an invalid
// file and a change only a restart applies are refused, the last good policy keeps running, and `status` and `plan`
// (text and --json) show the leader's policy revision, the refusal, and a warning when their own file differs.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFile, rename, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parsePolicy } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { runCli } from "../../packages/coordinator/src/cli/program.js";
import { policyDigest } from "../../packages/coordinator/src/plan/saved-plan.js";
import { eventually } from "./agent-fixture.js";
import { startApplyWorld, type ApplyWorld, type PolicyExtra } from "./coordinator-apply-fixture.js";

const BIN = fileURLToPath(new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url));

let w: ApplyWorld;
let serve: ChildProcess | undefined;
let serveErr = "";

beforeAll(async () => {
  w = await startApplyWorld();
});
afterAll(async () => {
  if (serve !== undefined && serve.exitCode === null) serve.kill("SIGKILL");
  await w?.close();
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const env = (): Record<string, string> => ({ LK_TEST_GITHUB_TOKEN: w.gh.token, LK_TEST_NATS_PASSWORD: w.coordinatorUser.password });
const extra = (): PolicyExtra => ({ auditFile: join(w.dir, "reload-audit.jsonl"), natsPasswordEnv: "LK_TEST_NATS_PASSWORD" });
const text = (count: number, over: Partial<PolicyExtra> = {}): string => w.policyText(count, { ...extra(), ...over });
const digest = (t: string): string => policyDigest(parsePolicy(t));

/** Save as an editor does: write a new file beside it, rename it over the old one. */
async function save(path: string, content: string): Promise<void> {
  const tmp = `${path}.swp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), env: { ...env(), LANEKEEPER_INSTANCE: "reload-cli" }, cwd: w.dir, now: () => Date.now() };
  const code = await runCli(args, io);
  return { code, out, err };
}

async function activeLanes(): Promise<number> {
  return (await w.store.list()).filter((r) => r.state === "active").length;
}

interface StatusPolicy {
  local: string;
  leader: { instance: string; digest?: string; loadedAt?: string; reloadFailed?: { at: string; message: string } } | null;
  differs: boolean;
}

async function statusPolicy(policyFile: string): Promise<StatusPolicy> {
  const r = await cli(["status", "--policy", policyFile, "--json", "--inventory-wait", "2s"]);
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as { policy: StatusPolicy }).policy;
}

describe("lanekeeper serve: policy reload", () => {
  it("acts on a changed lane count without a restart, reloads on SIGHUP, keeps the last good policy, and status/plan show the revision", async () => {
    const policyFile = join(w.dir, "reload.yaml");
    const operatorCopy = join(w.dir, "operator.yaml");
    await writeFile(policyFile, text(1));
    const port = await freePort();
    serve = spawn(
      process.execPath,
      [BIN, "serve", "--policy", policyFile, "--interval", "1s", "--lock-ttl", "3s", "--metrics-port", String(port), "--metrics-host", "127.0.0.1"],
      { env: { ...process.env, ...env(), LANEKEEPER_INSTANCE: "reload-serve" }, stdio: ["ignore", "ignore", "pipe"] },
    );
    serve.stderr?.on("data", (d: Buffer) => void (serveErr += d.toString()));
    const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    try {
      await eventually(async () => (await activeLanes()) === 1, `one active lane (serve: ${serveErr.slice(-2000)})`, 90_000, 500);

      // status: the leader runs this very file.
      const first = await statusPolicy(policyFile);
      expect(first).toMatchObject({ local: digest(text(1)), leader: { instance: "reload-serve", digest: digest(text(1)) }, differs: false });

      // An editor's save with two lanes: acted on by the running process.
      await save(policyFile, text(2));
      await eventually(async () => (await activeLanes()) === 2, `two active lanes after the reload (serve: ${serveErr.slice(-2000)})`, 90_000, 500);
      expect(serveErr).toMatch(/policy reloaded \(file change\): now running sha256:[0-9a-f]{12}/);
      expect(serve.exitCode).toBeNull();
      await eventually(async () => (await statusPolicy(policyFile)).leader?.digest === digest(text(2)), "status: the leader runs the new revision");

      // A file that does not validate: the last good policy keeps running; log, metric and status say so.
      await copyFile(policyFile, operatorCopy);
      await save(policyFile, text(9));
      await eventually(() => Promise.resolve(/policy reload failed \(file change\), keeping the last good policy/.test(serveErr)), "the refusal in serve's log");
      expect(serveErr).toContain("lanes[0].count: 9 lanes do not fit: the listed opted-in hosts have a total capacity of 4");
      expect(await metrics()).toMatch(/^lanekeeper_policy_reload_failed 1$/m);
      expect(await metrics()).toMatch(/^lanekeeper_policy_reloads_total\{result="invalid"\} 1$/m);
      const refused = await eventually(async () => {
        const p = await statusPolicy(operatorCopy);
        return p.leader?.reloadFailed === undefined ? undefined : p;
      }, "status: the refused reload");
      expect(refused).toMatchObject({ local: digest(text(2)), leader: { digest: digest(text(2)) }, differs: false });
      expect(refused.leader?.reloadFailed?.message).toMatch(/is invalid: lanes\[0\]\.count: 9 lanes do not fit/);
      const statusText = await cli(["status", "--policy", operatorCopy, "--inventory-wait", "2s"]);
      expect(statusText.out).toMatch(/^policy reload failed: .*lanes\[0\]\.count: 9 lanes do not fit.* the leader keeps running sha256:[0-9a-f]{12}\)$/m);
      expect(await activeLanes()).toBe(2);

      // A change only a restart can apply: refused with `restart needed`, the old policy still runs.
      await save(policyFile, text(2, { auditFile: join(w.dir, "elsewhere.jsonl") }));
      await eventually(() => Promise.resolve(/restart needed: coordinator\.auditFile changed/.test(serveErr)), "restart needed in serve's log");
      expect((await statusPolicy(operatorCopy)).leader?.reloadFailed?.message).toMatch(/^restart needed: coordinator\.auditFile changed/);

      // SIGHUP reloads (and does not end the process): the file back to the running policy clears the refusal.
      await writeFile(policyFile, text(2));
      const before = serveErr.length;
      serve.kill("SIGHUP");
      await eventually(() => Promise.resolve(/policy reload \(SIGHUP\): unchanged/.test(serveErr.slice(before))), "serve's answer to SIGHUP");
      await eventually(async () => (await statusPolicy(policyFile)).leader?.reloadFailed === undefined, "status: the refusal cleared");
      expect(serve.exitCode).toBeNull();

      // plan from a file the leader does not run: a warning, in text and in --json.
      await writeFile(operatorCopy, text(3));
      const plan = await cli(["plan", "--policy", operatorCopy, "--inventory-wait", "2s"]);
      expect(plan.out).toMatch(/^WARNING: this policy file differs from the one the leader runs/m);
      // The shared GitHub create budget, as every plan shows it (docs/coordinator.md, "Create budget").
      expect(plan.out).toMatch(/^GitHub create budget: \d+\/80 this minute, \d+\/500 this hour$/m);
      const planJson = await cli(["plan", "--policy", operatorCopy, "--json", "--inventory-wait", "2s"]);
      expect((JSON.parse(planJson.out) as { policy: StatusPolicy }).policy).toMatchObject({ local: digest(text(3)), leader: { digest: digest(text(2)) }, differs: true });

      // SIGHUP with a real change (the watch would see it too; whichever comes first, serve acts on it).
      serve.kill("SIGHUP");
      await writeFile(policyFile, text(1));
      serve.kill("SIGHUP");
      await eventually(async () => (await activeLanes()) === 1, `one active lane again (serve: ${serveErr.slice(-2000)})`, 120_000, 500);
    } finally {
      const exited = new Promise<number | null>((res) => serve?.once("exit", (code) => res(code)));
      serve.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });
});
