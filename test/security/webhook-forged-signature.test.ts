/**
 * Forged webhook deliveries: a missing, malformed, truncated or wrong `X-Hub-Signature-256`, a signature made with
 * another secret, a signed body altered after signing, and the SHA-1 header alone. Each is refused with 401 before
 * the body is parsed, counted, logged without the signature, and never reaches the job store.
 */
import { describe, expect, it } from "vitest";
import { receiverWorld, sign, SECRET, workflowJobPayload } from "./webhook-fixture.js";

const body = JSON.stringify(workflowJobPayload("queued"));

describe("webhook: forged signatures are refused and never acted on", () => {
  const cases: [string, Record<string, string | undefined>, string?][] = [
    ["no signature header", { "x-hub-signature-256": undefined }],
    ["only the legacy SHA-1 header", { "x-hub-signature-256": undefined, "x-hub-signature": "sha1=0123456789abcdef0123456789abcdef01234567" }],
    ["signed with another secret", { "x-hub-signature-256": sign(body, "not the secret") }],
    ["signature of another body", { "x-hub-signature-256": sign(JSON.stringify(workflowJobPayload("queued", { id: 2 }))) }],
    ["truncated signature", { "x-hub-signature-256": sign(body).slice(0, -2) }],
    ["signature without the sha256= prefix", { "x-hub-signature-256": sign(body).slice(7) }],
    ["all-zero signature", { "x-hub-signature-256": `sha256=${"0".repeat(64)}` }],
    ["empty signature", { "x-hub-signature-256": "" }],
    ["the secret itself as signature", { "x-hub-signature-256": `sha256=${SECRET}` }],
  ];
  for (const [name, headers] of cases) {
    it(`${name}: 401, counted, nothing stored`, async () => {
      const w = receiverWorld();
      const a = await w.deliver(undefined, headers, body);
      expect(a).toMatchObject({ status: 401, result: "rejected", reason: "signature" });
      expect(w.results).toEqual([{ result: "rejected", reason: "signature" }]);
      expect(await w.jobs.list()).toEqual([]);
      expect(w.transitions).toEqual([]);
    });
  }

  it("a body changed after signing (one byte) is refused", async () => {
    const w = receiverWorld();
    const tampered = body.replace('"queued"', '"queuee"');
    const a = await w.deliver(undefined, { "x-hub-signature-256": sign(body) }, tampered);
    expect(a.status).toBe(401);
    expect(await w.jobs.list()).toEqual([]);
  });

  it("the signature is checked before the body is parsed: a forged non-JSON body is 401, not 400", async () => {
    const w = receiverWorld();
    const a = await w.deliver(undefined, { "x-hub-signature-256": `sha256=${"a".repeat(64)}` }, "{not json");
    expect(a).toMatchObject({ status: 401, reason: "signature" });
  });

  it("a receiver with another secret refuses GitHub's correctly signed delivery", async () => {
    const w = receiverWorld({ secret: "rotated secret" });
    const a = await w.deliver(workflowJobPayload("queued"));
    expect(a.status).toBe(401);
    expect(await w.jobs.list()).toEqual([]);
  });

  it("the refusal is logged without the signature or the secret", async () => {
    const w = receiverWorld();
    const forged = sign(body, "guess");
    await w.deliver(undefined, { "x-hub-signature-256": forged }, body);
    const text = JSON.stringify(w.logs);
    expect(text).toContain("webhook delivery refused");
    expect(text).not.toContain(forged.slice(7));
    expect(text).not.toContain(SECRET);
  });
});
