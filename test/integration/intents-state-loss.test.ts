// An agent that restarts with its replay state deleted, over real NATS: a captured intent signed before the
// restart is refused (BEFORE_FLOOR) whatever its sequence, and the coordinator's Dispatcher re-issues fresh
// intents until the agent's floor has passed, so the caller just sees the action done. The agents here tolerate
// a short clock skew (1.5 s) so the floor passes quickly; the rule is the same with the default 30 s.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { RejectReason, ResultPayload, ResultStatus, decodeEnvelope } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingExecutor } from "@lanekeeper/testing";
import { buildSignedIntent } from "../../packages/coordinator/src/dispatch/intent-builder.js";
import { laneSpec, startIntentsWorld, type IntentsWorld } from "./intents-fixture.js";

const A = "build01";
let world: IntentsWorld;

beforeAll(async () => {
  world = await startIntentsWorld({ hostIds: [A], skewMs: 1_500, notBeforeSlackMs: 0, beforeFloorRetryMs: 300 });
});
afterAll(async () => {
  await world?.close();
});

describe("replay state lost", () => {
  it("captured intents are refused by the floor rule; the dispatcher re-issues until the floor passes", async () => {
    const agent = world.agent(A);
    const rec = agent.executor as RecordingExecutor;
    await world.dispatcher.dispatch({ hostId: A, action: { kind: "create", spec: laneSpec("lane-1", A), registration: Buffer.from("t") } });
    // Captured before the restart: a valid, unexpired intent with a sequence far above anything used.
    const captured = buildSignedIntent({
      hostId: A,
      hostSealingKey: world.hosts.host(A)!.sealingKey,
      sequence: 1_000_000,
      action: { kind: "stop", laneId: "lane-1" },
      signingKey: world.coordinatorKey,
      nowMs: Date.now(),
      notBeforeSlackMs: 0,
    });
    await agent.stop();
    await rm(join(agent.dir, "state", "replay-state.json"));
    await agent.restart();
    expect(agent.replay.floor).toBeDefined();

    const reply = await world.coord.request(`lk.v1.intent.${A}`, captured.envelope, { timeout: 5_000 });
    const refused = ResultPayload.decode(decodeEnvelope("result", reply.data).payload);
    expect(refused).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.BEFORE_FLOOR });

    const calls = rec.executeCalls.length;
    const out = await world.dispatcher.dispatch({ hostId: A, action: { kind: "stop", laneId: "lane-1" } });
    expect(out.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(out.intentIds.length).toBeGreaterThan(1);
    expect(rec.executeCalls.length).toBe(calls + 1);
    // The first accepted sequence is the new persisted high-water mark; the captured one stays refused.
    expect(agent.replay.hwm).toBe(out.sequence);
    const again = await world.coord.request(`lk.v1.intent.${A}`, captured.envelope, { timeout: 5_000 });
    expect(ResultPayload.decode(decodeEnvelope("result", again.data).payload).reasonCode).toBe(RejectReason.BEFORE_FLOOR);
  });
});
