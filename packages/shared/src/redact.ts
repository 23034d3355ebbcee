/**
 * Known secret field names, redacted by the logger (by path) and from audit details (by key, recursively), as a
 * second line of defense: callers must not pass secrets in the first place.
 */

/** Field names whose values are secrets wherever they appear (compared case-insensitively). */
export const SECRET_FIELD_NAMES: readonly string[] = Object.freeze([
  "token",
  "registrationToken",
  "removeToken",
  "registration",
  "jitConfig",
  "encodedJitConfig",
  "password",
  "natsPassword",
  "privateKey",
  "secret",
  "clientSecret",
  "authorization",
  "cookie",
  "credentials",
  "seed",
  "apiKey",
]);

const SECRET_SET = new Set(SECRET_FIELD_NAMES.map((n) => n.toLowerCase()));

/** What a redacted value is replaced with. */
export const REDACTED = "[redacted]";

/** Whether `key` names a secret field. */
export function isSecretFieldName(key: string): boolean {
  return SECRET_SET.has(key.toLowerCase()) || SECRET_SET.has(key.toLowerCase().replace(/[_-]/g, ""));
}

/** A deep copy of `value` with every secret-named field replaced by {@link REDACTED}. */
export function redactSecrets<T>(value: T): T {
  return redactValue(value, 0) as T;
}

function redactValue(value: unknown, depth: number): unknown {
  if (depth > 32 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v: unknown) => redactValue(v, depth + 1));
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return REDACTED;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    // defineProperty, not assignment: an own "__proto__" key (JSON.parse makes those) must stay data, not
    // become the copy's prototype.
    Object.defineProperty(out, k, {
      value: isSecretFieldName(k) ? REDACTED : redactValue(v, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
