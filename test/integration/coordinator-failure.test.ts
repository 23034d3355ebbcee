// Failures against real parts, and convergence once they pass: a create whose signed result never arrives in
// time (the lane is found by its id on the next observation and completed, never duplicated); a GitHub 5xx storm
// before planning (nothing observed, nothing changed) and in the middle of a removal (the lane stays in a safe
// state with a recovery note on its record and in the audit, and the next apply resumes the removal); a
// rate-limit storm while a drain waits (an error is never idle; the drain completes when the storm passes).
// Faults are injected by the GitHub emulator over its control API; the wrapper below only decides WHEN (right
// before a given client call), so the storm hits exactly the step under test.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { EmulatorFaults } from "@lanekeeper/harness";
import type { ApplyEvent } from "../../packages/coordinator/src/apply/apply-events.js";
import type { IntentSender } from "../../packages/coordinator/src/apply/apply-engine.js";
import { runLaneCommand } from "../../packages/coordinator/src/apply/lane-commands.js";
import { observeAndPlan } from "../../packages/coordinator/src/context/observe-world.js";
import { Dispatcher } from "../../packages/coordinator/src/dispatch/dispatcher.js";
import { undeliveredOutcome } from "../../packages/coordinator/src/dispatch/intent-outcome.js";
import { StaticHostRegistry } from "../../packages/coordinator/src/dispatch/host-registry.js";
import { KvSequenceAllocator } from "../../packages/coordinator/src/dispatch/sequence-allocator.js";
import type { GitHubClient } from "../../packages/coordinator/src/github/github-client.js";
import { eventually } from "./agent-fixture.js";
import { HOST, startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

let w: ApplyWorld;

beforeAll(async () => {
  w = await startApplyWorld({ drain: { settleMs: 400, deadlineMs: 60_000, pollMs: 150 } });
});
afterEach(async () => {
  await w?.gh.control.clearFaults();
});
afterAll(async () => {
  await w?.close();
});

/**
 * The real client, except that right before the first call of `method` for which `when()` holds, the given
 * faults are switched on in the emulator.
 */
function stormBefore(real: GitHubClient, method: keyof GitHubClient, faults: EmulatorFaults, when: () => boolean = () => true): GitHubClient {
  let stormed = false;
  return new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== method || typeof v !== "function") return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      return async (...args: unknown[]) => {
        if (!stormed && when()) {
          stormed = true;
          await w.gh.control.setFaults(faults);
        }
        return (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

async function activeLanes(): Promise<string[]> {
  return (await w.store.list()).filter((r) => r.state === "active").map((r) => r.laneId);
}

describe("failures end in a safe state and converge", () => {
  it("a create whose result times out: the next apply finds the lane by its id and completes it, no duplicate", async () => {
    // A dispatcher that waits only 300 ms for a result and never re-issues: the agent is slower than that.
    const impatient = new Dispatcher({
      nc: w.coord,
      signingKey: w.coordinatorKey,
      sequences: await KvSequenceAllocator.open(w.coord.jetstream()),
      hosts: new StaticHostRegistry([{ hostId: HOST, identityKey: w.agent.identityKey.publicKey, sealingKey: w.agent.sealingKey.publicKey }]),
      requestTimeoutMs: 300,
    });
    const once: IntentSender = { deliver: (req) => impatient.deliver({ ...req, attempts: 1 }) };
    const policy = w.policy(1);
    const { plan } = await observeAndPlan({ policy, github: w.github, store: w.store, inventory: w.inventory });
    expect(plan.actions.map((a) => a.kind)).toEqual(["create"]);
    const laneId = plan.actions[0]!.laneId;
    const report = await w.engine(policy, { dispatcher: once }).run(plan);
    const o = report.outcomes[0]!;
    expect([o.status, o.code, o.failedStep, o.safeState]).toEqual(["failed", "DISPATCH_TIMEOUT", "send-create", "created-unverified"]);
    expect(o.recovery).toContain("lanekeeper apply");
    // The create may well have happened (it did): the note looks first and never names a destructive command.
    expect(o.recovery?.match(/`(lanekeeper[^`]*)`/)?.[1]).toBe("lanekeeper status");
    expect(o.recovery).not.toMatch(/lanes (remove|restart|drain)/);
    expect(o.recovery).toContain("its record says creating");
    expect(await w.store.get(laneId)).toMatchObject({ state: "creating", attention: { code: "DISPATCH_TIMEOUT" } });
    // The agent did create it, after the coordinator stopped waiting.
    await eventually(async () => (await w.gh.control.listRunners()).find((r) => r.name === laneId)?.status === "online", "the lane online");
    await eventually(async () => (await w.inventory.latest(HOST))?.snapshot.lanes.some((l) => l.laneId === laneId), "the lane in the inventory");
    const next = await w.apply(1);
    expect(next.plan.actions.map((a) => [a.kind, a.reason.code])).toEqual([["update-record", "CREATE_COMPLETED"]]);
    expect(next.report.ok).toBe(true);
    const runner = (await w.gh.control.listRunners()).find((r) => r.name === laneId);
    expect(await w.store.get(laneId)).toMatchObject({ state: "active", runnerId: runner?.id });
    expect((await w.gh.control.listRunners()).length).toBe(1);
  });

  it("a GitHub 5xx storm before planning: nothing observed, nothing changed; afterwards apply has nothing left to do", async () => {
    const before = await w.store.list();
    await w.gh.control.setFaults({ errorRate: 1, errorStatus: 502 });
    const { plan, report } = await w.apply(2);
    expect(plan.actions).toEqual([]);
    expect(plan.warnings.map((x) => x.code)).toContain("SCOPE_UNOBSERVED");
    expect(report.outcomes).toEqual([]);
    expect(await w.store.list()).toEqual(before);
    await w.gh.control.clearFaults();
    expect((await w.apply(1)).plan.actions).toEqual([]);
  });

  it("a GitHub 5xx storm in the middle of a removal: safe state, recovery note on the record and in the audit; the next apply resumes", async () => {
    const [laneId] = await activeLanes();
    expect(laneId).toBeDefined();
    const policy = w.policy(0);
    const { plan } = await observeAndPlan({ policy, github: w.github, store: w.store, inventory: w.inventory });
    expect(plan.actions.map((a) => [a.kind, a.laneId])).toEqual([["remove", laneId]]);
    // The storm starts right before the labels are swapped (the first label change of the removal).
    const github = stormBefore(w.github, "setCustomLabels", { errorRate: 1, errorStatus: 503 });
    const report = await w.engine(policy, { github }).run(plan);
    const o = report.outcomes[0]!;
    expect([o.status, o.failedStep, o.safeState]).toEqual(["failed", "set-draining-labels", "untouched"]);
    expect(o.code).toMatch(/^GITHUB_/);
    expect(o.recovery).toContain("lanekeeper apply");
    const rec = await w.store.get(laneId!);
    expect(rec?.state).toBe("removing");
    expect(rec?.attention?.message).toBe(o.recovery);
    const audit = (await w.auditRecords()).filter((r) => r.laneId === laneId && r.action === "remove");
    expect(audit.map((r) => r.phase).slice(-3)).toEqual(["planned", "started", "failed"]);
    expect((audit.at(-1)?.details as { recovery?: string }).recovery).toBe(o.recovery);
    // The lane is still serving: nothing was drained, stopped or deleted.
    expect((await w.gh.control.listRunners()).find((r) => r.name === laneId)?.labels).toContain("linux");
    expect((await w.sd.unitProperties(`lanekeeper-lane-${laneId}.service`, ["ActiveState"])).ActiveState).toBe("active");

    await w.gh.control.clearFaults();
    const next = await w.apply(0);
    expect(next.plan.actions.map((a) => [a.kind, a.reason.code])).toEqual([["remove", "RESUME_REMOVE"]]);
    expect(next.report.outcomes.map((x) => x.status)).toEqual(["succeeded"]);
    expect(await w.store.get(laneId!)).toBeUndefined();
    expect((await w.gh.control.listRunners()).find((r) => r.name === laneId)).toBeUndefined();
  });

  it("a rate-limit storm while a drain waits: errors are never idle; the drain completes once the storm passes", async () => {
    const { report } = await w.apply(1);
    expect(report.ok).toBe(true);
    const [laneId] = await activeLanes();
    const events: ApplyEvent[] = [];
    let errorsSeen = 0;
    // Secondary rate limit with a retry-after far beyond what the client waits: every call fails at once. It
    // starts with the first GitHub read of the drain wait.
    let waiting = false;
    const github = stormBefore(w.github, "getRunner", { rateLimit: { secondary: true, retryAfterS: 3600 } }, () => waiting);
    const done = await runLaneCommand(w.laneDeps(1, { github }), "drain", laneId!, {
      operator: "alice",
      onEvent: (e) => {
        events.push(e);
        if (e.type === "step" && e.step === "wait-idle") waiting = true;
        if (e.type === "drain-wait" && e.waitingFor === "github-error" && ++errorsSeen === 5) void w.gh.control.clearFaults();
      },
    });
    expect(done.outcomes.map((o) => [o.status, o.code ?? ""])).toEqual([["succeeded", ""]]);
    expect(errorsSeen).toBeGreaterThanOrEqual(5);
    const waits = events.flatMap((e) => (e.type === "drain-wait" ? [e.waitingFor] : []));
    // Idle only after the errors: the settle window started over once GitHub answered again.
    expect(waits.lastIndexOf("github-error")).toBeLessThan(waits.lastIndexOf("settle-window"));
    expect((await w.gh.control.listRunners()).find((r) => r.name === laneId)?.labels).toContain("lk-draining");
  });

  it("a create whose intent was lost: the next apply forgets the failed record and creates the lane again at once", async () => {
    const policy = w.policy(2);
    const { plan } = await observeAndPlan({ policy, github: w.github, store: w.store, inventory: w.inventory });
    expect(plan.actions.map((a) => a.kind)).toEqual(["create"]);
    const laneId = plan.actions[0]!.laneId;
    // The request never reaches the agent (lost on the way): the dispatcher gives up without an answer.
    const lost: IntentSender = {
      deliver: () => Promise.resolve(undeliveredOutcome("DISPATCH_TIMEOUT", "no result from build01 within 300 ms", [])),
    };
    const failed = await w.engine(policy, { dispatcher: lost }).run(plan);
    expect(failed.outcomes.map((o) => [o.status, o.code, o.safeState])).toEqual([["failed", "DISPATCH_TIMEOUT", "created-unverified"]]);
    const rec = await w.store.get(laneId);
    expect(rec).toMatchObject({ state: "creating", attention: { code: "DISPATCH_TIMEOUT" } });
    // Once the host has reported (after the failure) that it has no such lane, the record is forgotten and the
    // lane created again in the same apply, without waiting out the registration grace.
    await eventually(async () => ((await w.inventory.latest(HOST))?.receivedAtMs ?? 0) > rec!.updatedAtMs + 2_500, "an inventory after the failure");
    const next = await w.apply(2);
    expect(next.plan.actions.map((a) => [a.kind, a.reason.code])).toEqual([
      ["forget-record", "CREATE_FAILED"],
      ["create", "SCALE_UP"],
    ]);
    expect(next.report.outcomes.map((o) => o.status)).toEqual(["succeeded", "succeeded"]);
    expect((await w.store.list()).filter((r) => r.state === "creating")).toEqual([]);
    expect((await w.gh.control.listRunners()).length).toBe(2);
  });

  it("a create the agent refuses (its allowlist changed after planning): untouched, the record dropped, the reason in the note", async () => {
    const saved = w.agent.control;
    w.agent.control = { ...saved, pools: [] };
    try {
      const { plan, report } = await w.apply(3);
      expect(plan.actions.map((a) => a.kind)).toEqual(["create"]);
      const laneId = plan.actions[0]!.laneId;
      const o = report.outcomes[0]!;
      expect([o.status, o.code, o.failedStep, o.safeState]).toEqual(["failed", "NOT_ALLOWED_POOL", "send-create", "untouched"]);
      expect(o.recovery).toContain("NOT_ALLOWED_POOL");
      expect(await w.store.get(laneId)).toBeUndefined();
      expect((await w.gh.control.listRunners()).length).toBe(2);
      const agentSide = (await w.agentAuditRecords()).filter((r) => r.laneId === laneId && (r.phase === "started" || r.phase === "succeeded"));
      expect(agentSide).toEqual([]);
    } finally {
      w.agent.control = saved;
    }
    const again = await w.apply(3);
    expect(again.report.outcomes.map((o) => [o.kind, o.status])).toEqual([["create", "succeeded"]]);
  });
});
