// GitHub down, against real parts: the GitHub emulator stopped (or a closed port, or a server that accepts and
// never answers), NATS, a real agent running a lane in a real systemd. What must hold:
// - a refused connection is reported as what it was, with the URL (origin and path), code GITHUB_UNREACHABLE and
//   a hint, by the client and by every command (plan, status, apply, lanes), never as "HTTP 500";
// - `lanes drain <lane> --deadline 10s` with GitHub down ends within its deadline and changes nothing;
// - GitHub failing in the middle of an operator drain leaves the lane as it was, and the recovery note, the lane
//   record, `status` and `plan` tell the same story, naming the command that acts on it.
import { createServer, type Server } from "node:net";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startGitHubEmulator } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApplyEvent } from "../../packages/coordinator/src/apply/apply-events.js";
import { runLaneCommand } from "../../packages/coordinator/src/apply/lane-commands.js";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { ExitCode } from "../../packages/coordinator/src/cli/exit-codes.js";
import { runCli } from "../../packages/coordinator/src/cli/program.js";
import { laneStatuses } from "../../packages/coordinator/src/cli/status-command.js";
import { observeAndPlan, observeWorld } from "../../packages/coordinator/src/context/observe-world.js";
import type { GitHubClient } from "../../packages/coordinator/src/github/github-client.js";
import { GitHubUnreachableError } from "../../packages/coordinator/src/github/github-errors.js";
import { OctokitGitHubClient } from "../../packages/coordinator/src/github/octokit-github-client.js";
import { RedactedSecret } from "../../packages/coordinator/src/github/redacted-secret.js";
import { classify } from "../../packages/coordinator/src/observe/classify.js";
import { SCOPE, startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

let w: ApplyWorld;
let laneId = "";
/** The API URL of a GitHub emulator that was started and stopped: nothing listens there any more. */
let stoppedApi = "";
let closedPort = 0;
let silent: Server;
let silentPort = 0;

function client(apiUrl: string, requestTimeoutMs?: number): OctokitGitHubClient {
  return new OctokitGitHubClient({
    apiUrl,
    credential: { kind: "token", token: new RedactedSecret("ghp_secretsecretsecret") },
    ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function failure(p: Promise<unknown>): Promise<GitHubUnreachableError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GitHubUnreachableError);
  return err as GitHubUnreachableError;
}

interface Run {
  code: number;
  out: string;
  err: string;
  ms: number;
}

async function lk(args: string[]): Promise<Run> {
  let out = "";
  let err = "";
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    env: { PATH: process.env.PATH, LANEKEEPER_POLICY: join(w.dir, "down.yaml"), LK_TEST_GITHUB_TOKEN: w.gh.token, LK_TEST_NATS_PASSWORD: w.coordinatorUser.password },
    cwd: w.dir,
    now: () => Date.now(),
  };
  const t0 = Date.now();
  const code = await runCli(args, io, { confirm: null });
  return { code, out, err, ms: Date.now() - t0 };
}

beforeAll(async () => {
  w = await startApplyWorld({ drain: { settleMs: 400, deadlineMs: 60_000, pollMs: 150 } });
  const { report } = await w.apply(1);
  expect(report.ok).toBe(true);
  laneId = report.outcomes[0]!.laneId;
  const stopped = await startGitHubEmulator({ repos: [SCOPE] });
  stoppedApi = stopped.apiUrl;
  await stopped.stop();
  closedPort = await freePort();
  // Accepts every connection and never answers.
  silent = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  silentPort = (silent.address() as { port: number }).port;
  // The CLI's policy: the real NATS and agent, GitHub at the stopped emulator.
  const text = w.policyText(1, { auditFile: join(w.dir, "down-audit.jsonl"), natsPasswordEnv: "LK_TEST_NATS_PASSWORD" });
  await writeFile(join(w.dir, "down.yaml"), text.replace(JSON.stringify(w.gh.apiUrl), JSON.stringify(stoppedApi)));
}, 240_000);

afterAll(async () => {
  silent?.close();
  await w?.close();
});

describe("the GitHub client says a connection failed, and where", () => {
  it("a stopped emulator and a closed port: connection refused at origin + path, code GITHUB_UNREACHABLE, a hint; never HTTP 500", async () => {
    for (const api of [stoppedApi, `http://127.0.0.1:${closedPort}/api/v3`]) {
      const t0 = Date.now();
      const e = await failure(client(api).listRunners(SCOPE));
      expect(Date.now() - t0).toBeLessThan(5_000); // one retry after 1 s, not a 14 s backoff
      expect(e.code).toBe("GITHUB_UNREACHABLE");
      expect(e.failure).toBe("refused");
      expect(e.url).toBe(`${api}/repos/${SCOPE}/actions/runners`);
      expect(e.message).toContain(`connection refused, ECONNREFUSED at ${api}/repos/${SCOPE}/actions/runners`);
      expect(e.message).not.toMatch(/500|ghp_|per_page/);
      expect(e.hint).toContain("github.apiUrl");
    }
  });

  it("a server that accepts and never answers: a timeout, bounded by the per-attempt timeout", async () => {
    const t0 = Date.now();
    const e = await failure(client(`http://127.0.0.1:${silentPort}`, 400).getRunner(SCOPE, 7));
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(e.failure).toBe("timeout");
    expect(e.message).toContain(`no answer in time at http://127.0.0.1:${silentPort}/repos/${SCOPE}/actions/runners/7 after 2 attempts`);
  });
});

describe("every command with GitHub stopped", () => {
  it.each([["plan"], ["status"], ["apply", "--yes"]])("%s: exit 5, connection refused at the URL, not HTTP 500", async (...args) => {
    const r = await lk(args);
    expect(r.code, r.out + r.err).toBe(ExitCode.GITHUB_UNAVAILABLE);
    expect(r.out + r.err).toContain("GITHUB_UNREACHABLE");
    expect(r.out + r.err).toContain(`connection refused, ECONNREFUSED at ${stoppedApi}/repos/${SCOPE}/actions/runners`);
    // Neither the error nor octokit's request log ("GET … - 500 with id UNKNOWN") calls it a 500.
    expect(r.out + r.err).not.toMatch(/HTTP 500| - 500 with id/);
  });

  it("lanes drain --deadline 10s: refused within the deadline, nothing changed; status and plan agree", async () => {
    const before = await w.store.get(laneId);
    const r = await lk(["lanes", "drain", laneId, "--deadline", "10s"]);
    expect(r.code, r.out + r.err).toBe(ExitCode.GITHUB_UNAVAILABLE);
    expect(r.ms).toBeLessThan(10_000);
    expect(r.err).toContain("GITHUB_UNREACHABLE");
    expect(r.err).toContain(`connection refused, ECONNREFUSED at ${stoppedApi}`);
    expect(r.err).toContain("nothing was changed");
    expect(r.err).toContain(`lanekeeper lanes drain ${laneId}`);
    expect(await w.store.get(laneId)).toEqual(before);
    const runner = (await w.gh.control.listRunners()).find((x) => x.name === laneId);
    expect(runner?.labels).toContain("linux");
    expect(runner?.labels).not.toContain("lk-draining");
  });
});

describe("GitHub failing in the middle of an operator drain", () => {
  it("the record write is undone; the note says so and names `lanes drain` again; status and plan agree", async () => {
    // Observation works; from the first label change on, every GitHub call goes to the stopped emulator.
    let down = false;
    const dead = client(stoppedApi);
    const github: GitHubClient = new Proxy(w.github, {
      get(target, prop, receiver) {
        const v = Reflect.get(down ? dead : target, prop, receiver) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(down ? dead : target) : v;
      },
    });
    const onEvent = (e: ApplyEvent): void => {
      if (e.type === "step" && e.step === "set-draining-labels") down = true;
    };
    const t0 = Date.now();
    const report = await runLaneCommand(w.laneDeps(1, { github }), "drain", laneId, { operator: "alice", deadlineMs: 10_000, onEvent });
    expect(Date.now() - t0).toBeLessThan(10_000);
    const o = report.outcomes[0]!;
    expect([o.status, o.code, o.failedStep, o.safeState]).toEqual(["failed", "GITHUB_UNREACHABLE", "set-draining-labels", "untouched"]);
    expect(o.message).toContain(`connection refused, ECONNREFUSED at ${stoppedApi}`);
    expect(o.recovery).toContain("nothing was changed");
    expect(o.recovery).toContain("its record says active");
    expect([...(o.recovery ?? "").matchAll(/`(lanekeeper[^`]*)`/g)].map((m) => m[1])).toEqual([`lanekeeper lanes drain ${laneId}`]);
    // The record is as before the command: active, no drain reason, no stale note.
    const rec = await w.store.get(laneId);
    expect(rec).toMatchObject({ state: "active" });
    expect(rec?.drainReason).toBeUndefined();
    expect(rec?.attention).toBeUndefined();
    // The audit has the failure with the same note.
    const failed = (await w.auditRecords()).filter((x) => x.laneId === laneId && x.action === "drain").at(-1);
    expect(failed?.phase).toBe("failed");
    expect((failed?.details as { recovery?: string }).recovery).toBe(o.recovery);
    // status: nothing needs attention; plan: nothing to do and no warning about the lane.
    const world = await observeWorld({ policy: w.policy(1), github: w.github, store: w.store, inventory: w.inventory });
    const lane = laneStatuses(classify(w.policy(1), world.observed, world.records, { nowMs: world.observedAtMs }).lanes).find((l) => l.laneId === laneId);
    expect(lane).toMatchObject({ record: "active", attention: null });
    const { plan } = await observeAndPlan({ policy: w.policy(1), github: w.github, store: w.store, inventory: w.inventory });
    expect(plan.actions).toEqual([]);
    expect(plan.warnings.filter((x) => x.laneId === laneId)).toEqual([]);
    // The note's command works once GitHub answers.
    const again = await runLaneCommand(w.laneDeps(1), "drain", laneId, { operator: "alice", deadlineMs: 30_000 });
    expect(again.outcomes.map((x) => x.status)).toEqual(["succeeded"]);
    const released = await runLaneCommand(w.laneDeps(1), "release", laneId, { operator: "alice" });
    expect(released.ok).toBe(true);
  });
});
