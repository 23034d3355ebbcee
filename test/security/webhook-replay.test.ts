/**
 * Replayed webhook deliveries: the same `X-GitHub-Delivery` twice is acted on once (the second is acknowledged as
 * a duplicate), and a late or replayed `queued` body (under a fresh delivery id: the signature does not cover the
 * id) never moves a job back from `in_progress` or `completed`.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { receiverWorld, workflowJobPayload } from "./webhook-fixture.js";

describe("webhook: replays", () => {
  it("the same delivery id twice: stored once, the second answered 200 as a duplicate", async () => {
    const w = receiverWorld();
    const id = randomUUID();
    const first = await w.deliver(workflowJobPayload("queued"), { "x-github-delivery": id });
    const second = await w.deliver(workflowJobPayload("queued"), { "x-github-delivery": id });
    expect(first).toMatchObject({ status: 200, result: "accepted" });
    expect(second).toMatchObject({ status: 200, result: "duplicate" });
    expect(w.transitions).toHaveLength(1);
    expect(w.results.map((r) => r.result)).toEqual(["accepted", "duplicate"]);
  });

  it("a duplicate id carrying another (validly signed) body is not acted on either", async () => {
    const w = receiverWorld();
    const id = randomUUID();
    await w.deliver(workflowJobPayload("queued"), { "x-github-delivery": id });
    const again = await w.deliver(workflowJobPayload("completed"), { "x-github-delivery": id });
    expect(again.result).toBe("duplicate");
    expect((await w.jobs.get(1001))?.status).toBe("queued");
  });

  it("a replayed queued body under a fresh id never moves the job back from in_progress or completed", async () => {
    const w = receiverWorld();
    await w.deliver(workflowJobPayload("queued"));
    await w.deliver(workflowJobPayload("in_progress"));
    await w.deliver(workflowJobPayload("queued"));
    expect((await w.jobs.get(1001))?.status).toBe("in_progress");
    await w.deliver(workflowJobPayload("completed"));
    await w.deliver(workflowJobPayload("queued"));
    await w.deliver(workflowJobPayload("in_progress"));
    const j = await w.jobs.get(1001);
    expect(j).toMatchObject({ status: "completed", runnerName: "lk-lane-abc", source: "webhook" });
    expect(w.transitions.map((t) => t.after.status)).toEqual(["queued", "in_progress", "completed"]);
  });

  it("a malformed delivery id is refused before anything is claimed or stored", async () => {
    const w = receiverWorld();
    for (const bad of ["", "../x", "a".repeat(65), "id with space"]) {
      const a = await w.deliver(workflowJobPayload("queued"), { "x-github-delivery": bad });
      expect(a).toMatchObject({ status: 400, reason: "malformed" });
    }
    const none = await w.deliver(workflowJobPayload("queued"), { "x-github-delivery": undefined });
    expect(none.status).toBe(400);
    expect(await w.jobs.list()).toEqual([]);
  });

  it("a delivery the store could not take gives its id back, so GitHub's redelivery is acted on", async () => {
    const w = receiverWorld();
    const id = randomUUID();
    const record = w.jobs.record.bind(w.jobs);
    w.jobs.record = () => Promise.reject(new Error("KV down"));
    const failed = await w.deliver(workflowJobPayload("queued"), { "x-github-delivery": id });
    expect(failed).toMatchObject({ status: 503, result: "failed" });
    w.jobs.record = record;
    const redelivered = await w.deliver(workflowJobPayload("queued"), { "x-github-delivery": id });
    expect(redelivered.result).toBe("accepted");
    expect((await w.jobs.get(1001))?.status).toBe("queued");
  });
});
