/**
 * Whether a JetStream KV write failed its revision check: `update` with a stale revision or `create` of a key that
 * exists (API error 10071, "wrong last sequence"; older servers say "key exists"). Every compare-and-set loop of
 * the coordinator retries or gives up on exactly this, and treats anything else as NATS being unavailable.
 */
export function isKvConflict(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string } | null | undefined;
  return e?.api_error?.err_code === 10071 || /wrong last sequence|key exists/i.test(e?.message ?? "");
}
