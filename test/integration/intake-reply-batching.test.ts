// The agent's intake sends the results of intents that finish together (one replay-state group commit) in one
// go, so NATS writes them to the socket together instead of one write (and one wake-up of the server) each;
// every delivery still gets exactly its own signed result. Driven through `listen` with a stand-in subscription
// so the moment of each `respond` is observable.
import type { Msg, NatsConnection, Subscription, SubscriptionOptions } from "nats";
import { decodeEnvelope, ResultPayload, ResultStatus } from "@lanekeeper/shared";
import { afterEach, describe, expect, it } from "vitest";
import { HOST, makeIntake, type IntakeFixture } from "../security/intake-fixture.js";

let fx: IntakeFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/** A NatsConnection stand-in that hands the intake's subscription callback to the test. */
function fakeConnection(): { nc: NatsConnection; deliver: (msg: Msg) => void } {
  let cb: SubscriptionOptions["callback"];
  const nc = {
    subscribe(_subject: string, opts: SubscriptionOptions): Subscription {
      cb = opts.callback;
      return { unsubscribe() {} } as unknown as Subscription;
    },
  } as unknown as NatsConnection;
  return { nc, deliver: (msg) => cb!(null, msg) };
}

describe("intake replies", () => {
  it("results of intents that finish together are sent in one synchronous run, each to its own requester", async () => {
    fx = await makeIntake();
    const f = fx;
    for (let i = 0; i < 8; i++) f.executor.setLane(`lane-${i}`, "owned", { scope: "acme/api", pool: "linux-x64", backend: 1 });
    // The executor takes a different number of microtask steps per lane, as real actions do: the intents finish
    // in one event-loop turn, but not in one microtask.
    f.executor.onExecute = async (action) => {
      for (let k = 0; k < Number(action.laneId.slice("lane-".length)) * 3; k++) await Promise.resolve();
    };
    const { nc, deliver } = fakeConnection();
    f.intake.listen(nc);
    // One group commit covers all of them: delivered together, they become durable and finish together.
    const sent: { reply: string; data: Uint8Array }[] = [];
    let sentWhenTheFirstRunEnded = -1;
    const all = new Promise<void>((resolve) => {
      const intents = Array.from({ length: 8 }, (_, i) => f.intent({ $case: "stop", value: { laneId: `lane-${i}`, force: false } }));
      for (const [i, x] of intents.entries()) {
        const reply = `_INBOX.r${i}`;
        deliver({
          subject: `lk.v1.intent.${HOST}`,
          reply,
          data: x.bytes,
          headers: undefined,
          respond(data: Uint8Array): boolean {
            // Whatever is sent before this microtask runs was sent in the same synchronous run as the first.
            if (sent.length === 0) queueMicrotask(() => (sentWhenTheFirstRunEnded = sent.length));
            sent.push({ reply, data });
            if (sent.length === intents.length) resolve();
            return true;
          },
        } as unknown as Msg);
      }
    });
    await all;
    await new Promise((r) => setImmediate(r));
    expect(sentWhenTheFirstRunEnded).toBe(8);
    // Each requester got the result of its own intent.
    const ids = sent.map((s) => ResultPayload.decode(decodeEnvelope("result", s.data).payload));
    for (const [n, s] of sent.entries()) {
      expect(ids[n]!.status).toBe(ResultStatus.RESULT_STATUS_OK);
      expect(f.executor.executeCalls.find((c) => c.intentId === ids[n]!.intentId)?.laneId).toBe(`lane-${s.reply.slice("_INBOX.r".length)}`);
    }
  });
});
