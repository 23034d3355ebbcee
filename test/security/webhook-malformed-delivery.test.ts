/**
 * Malformed or unexpected webhook deliveries with a valid signature: not JSON, JSON without the fields the store
 * needs, `__proto__` keys, unknown events and actions, repositories that are not managed, wrong method and path.
 * Malformed ones are refused (400) and stored nothing; unknown events and actions are acknowledged and ignored;
 * `ping` is answered.
 */
import { describe, expect, it } from "vitest";
import { receiverWorld, sign, workflowJobPayload } from "./webhook-fixture.js";

describe("webhook: malformed and unexpected deliveries", () => {
  it("a signed body that is not JSON: 400 malformed, nothing stored", async () => {
    const w = receiverWorld();
    const a = await w.deliver(undefined, {}, "{\"action\": \"queued\", ");
    expect(a).toMatchObject({ status: 400, result: "rejected", reason: "malformed" });
    expect(await w.jobs.list()).toEqual([]);
  });

  const broken: [string, (p: Record<string, unknown>) => void][] = [
    ["no workflow_job", (p) => delete p.workflow_job],
    ["a string id", (p) => ((p.workflow_job as Record<string, unknown>).id = "1001")],
    ["a negative id", (p) => ((p.workflow_job as Record<string, unknown>).id = -1)],
    ["labels not a list", (p) => ((p.workflow_job as Record<string, unknown>).labels = "linux")],
    ["no created_at", (p) => delete (p.workflow_job as Record<string, unknown>).created_at],
    ["no repository", (p) => delete p.repository],
    ["a repository name with a path", (p) => ((p.repository as Record<string, unknown>).full_name = "acme/../x")],
    ["action not a string", (p) => (p.action = 7)],
  ];
  for (const [name, mutate] of broken) {
    it(`${name}: 400 malformed, nothing stored`, async () => {
      const w = receiverWorld();
      const p = workflowJobPayload("queued");
      mutate(p);
      const a = await w.deliver(p);
      expect(a).toMatchObject({ status: 400, reason: "malformed" });
      expect(await w.jobs.list()).toEqual([]);
    });
  }

  it("__proto__ and constructor keys in the payload pollute nothing and are not stored", async () => {
    const w = receiverWorld();
    const raw = JSON.stringify(workflowJobPayload("queued")).replace('"workflow_job":{', '"__proto__":{"polluted":true},"workflow_job":{"constructor":{"prototype":{"polluted":true}},');
    const a = await w.deliver(undefined, { "x-hub-signature-256": sign(raw) }, raw);
    expect(a.result).toBe("accepted");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys((await w.jobs.get(1001)) ?? {})).not.toContain("constructor");
  });

  it("ping is answered 200 and stores nothing", async () => {
    const w = receiverWorld();
    const a = await w.deliver({ zen: "Keep it logically awesome.", hook_id: 1 }, { "x-github-event": "ping" });
    expect(a).toMatchObject({ status: 200, result: "accepted", detail: "pong" });
    expect(await w.jobs.list()).toEqual([]);
  });

  it("an unknown event is acknowledged (202) and ignored", async () => {
    const w = receiverWorld();
    for (const event of ["push", "workflow_run", "check_run", ""]) {
      const a = await w.deliver({ action: "completed" }, { "x-github-event": event });
      expect(a).toMatchObject({ status: 202, result: "ignored" });
    }
    const none = await w.deliver({ action: "queued" }, { "x-github-event": undefined });
    expect(none.result).toBe("ignored");
    expect(await w.jobs.list()).toEqual([]);
    expect(w.results.every((r) => r.result === "ignored")).toBe(true);
  });

  it("unknown workflow_job actions (waiting) and job states are acknowledged and ignored", async () => {
    const w = receiverWorld();
    expect((await w.deliver(workflowJobPayload("waiting"))).result).toBe("ignored");
    expect((await w.deliver(workflowJobPayload("queued", { status: "pending" }))).result).toBe("ignored");
    expect(await w.jobs.list()).toEqual([]);
  });

  it("a job of a repository the policy does not manage is acknowledged and not stored", async () => {
    const w = receiverWorld();
    const a = await w.deliver(workflowJobPayload("queued", { repo: "someone/else" }));
    expect(a).toMatchObject({ status: 202, result: "ignored" });
    expect(await w.jobs.list()).toEqual([]);
  });

  it("a managed repository spelt in another case is stored under the policy's spelling", async () => {
    const w = receiverWorld();
    await w.deliver(workflowJobPayload("queued", { repo: "ACME/Api" }));
    expect(await w.jobs.get(1001)).toMatchObject({ scope: "acme/api", repository: "ACME/Api", status: "queued", labels: ["self-hosted", "linux", "x64"] });
  });

  it("wrong method or path: 405 / 404, nothing parsed", async () => {
    const w = receiverWorld();
    const body = Buffer.from(JSON.stringify(workflowJobPayload("queued")));
    const headers = { "x-github-event": "workflow_job", "x-github-delivery": "d1", "x-hub-signature-256": sign(body) };
    expect((await w.receiver.handle({ method: "GET", path: "/github/webhook", headers, body })).status).toBe(405);
    expect((await w.receiver.handle({ method: "POST", path: "/other", headers, body })).status).toBe(404);
    expect(await w.jobs.list()).toEqual([]);
  });
});
