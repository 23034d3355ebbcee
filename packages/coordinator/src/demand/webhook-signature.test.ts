import { createHmac } from "node:crypto";
import { beforeEach, describe, expect, it, vi } from "vitest";

// Wrap timingSafeEqual so the test can see that verification goes through it (and not through `===`).
vi.mock("node:crypto", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:crypto")>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const crypto = await import("node:crypto");
const { verifyWebhookSignature, webhookSignature } = await import("./webhook-signature.js");

const secret = Buffer.from("s3cret");
const body = Buffer.from('{"action":"queued"}');

describe("verifyWebhookSignature", () => {
  beforeEach(() => {
    vi.mocked(crypto.timingSafeEqual).mockClear();
  });

  it("accepts GitHub's signature (sha256=<hex HMAC-SHA256 of the exact bytes>), upper-case hex too", () => {
    const hex = createHmac("sha256", secret).update(body).digest("hex");
    expect(webhookSignature(secret, body)).toBe(`sha256=${hex}`);
    expect(verifyWebhookSignature(secret, body, `sha256=${hex}`)).toBe(true);
    expect(verifyWebhookSignature(secret, body, `sha256=${hex.toUpperCase()}`)).toBe(true);
  });

  it("compares digests with timingSafeEqual, also when they differ", () => {
    const good = webhookSignature(secret, body);
    verifyWebhookSignature(secret, body, good);
    const bad = `sha256=${"0".repeat(64)}`;
    expect(verifyWebhookSignature(secret, body, bad)).toBe(false);
    expect(crypto.timingSafeEqual).toHaveBeenCalledTimes(2);
  });

  it("refuses a missing, malformed or wrong-secret signature, and a changed body", () => {
    expect(verifyWebhookSignature(secret, body, undefined)).toBe(false);
    expect(verifyWebhookSignature(secret, body, "")).toBe(false);
    expect(verifyWebhookSignature(secret, body, webhookSignature(secret, body).replace("sha256=", "sha1="))).toBe(false);
    expect(verifyWebhookSignature(secret, body, `${webhookSignature(secret, body)}0`)).toBe(false);
    expect(verifyWebhookSignature(secret, body, ` ${webhookSignature(secret, body)}`)).toBe(false);
    expect(verifyWebhookSignature(secret, body, webhookSignature(Buffer.from("other"), body))).toBe(false);
    expect(verifyWebhookSignature(secret, Buffer.from('{"action":"queuee"}'), webhookSignature(secret, body))).toBe(false);
    // A malformed header is refused before any digest is compared.
    expect(crypto.timingSafeEqual).toHaveBeenCalledTimes(2);
  });
});
