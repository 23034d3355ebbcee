import { createHmac, timingSafeEqual } from "node:crypto";

const HEADER = /^sha256=([0-9a-fA-F]{64})$/;

/** The `X-Hub-Signature-256` value GitHub sends for `body` under `secret`: `sha256=<hex HMAC-SHA256>`. */
export function webhookSignature(secret: Uint8Array, body: Uint8Array): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * Whether `header` is GitHub's signature of exactly these body bytes under `secret`. Runs before the body is
 * parsed. The digests are compared with `timingSafeEqual`, so the time taken says nothing about how many leading
 * bytes matched; a missing or malformed header is refused without computing anything.
 */
export function verifyWebhookSignature(secret: Uint8Array, body: Uint8Array, header: string | undefined): boolean {
  const m = header === undefined ? null : HEADER.exec(header);
  if (m?.[1] === undefined) return false;
  const given = Buffer.from(m[1], "hex");
  const expected = createHmac("sha256", secret).update(body).digest();
  return timingSafeEqual(given, expected);
}
