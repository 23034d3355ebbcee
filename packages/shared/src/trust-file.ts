/**
 * The agent's trust file: its current trusted key set as JSON (intent keys and the pinned root keys), installed
 * out of band at enrollment and rewritten (atomically, by the agent) after each verified key-set update. JSON rather than protobuf so an
 * operator can read which keys a host trusts.
 */
import { z } from "zod";
import { validateConfig } from "./config-loader.js";
import { ConfigError } from "./errors.js";
import { KeyStatus, type TrustedKey, type TrustedKeySet } from "./gen/lanekeeper/v1/envelope.js";
import { validateKeySet } from "./keyset.js";
import { MAX_CONFIG_BYTES, MAX_KEYSET_KEYS } from "./limits.js";
import { RejectError } from "./errors.js";

/** Format tag of trust files. */
export const TRUST_FILE_FORMAT = "lanekeeper.trust.v1";

const STATUS_NAMES = { next: KeyStatus.KEY_STATUS_NEXT, active: KeyStatus.KEY_STATUS_ACTIVE, retired: KeyStatus.KEY_STATUS_RETIRED, revoked: KeyStatus.KEY_STATUS_REVOKED } as const;
type StatusName = keyof typeof STATUS_NAMES;

const keySchema = z.strictObject({
  keyId: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex characters"),
  publicKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, "must be base64 of the raw 32-byte Ed25519 public key"),
  notBeforeMs: z.number().int().min(0),
  notAfterMs: z.number().int().positive(),
  status: z.enum(["next", "active", "retired", "revoked"]),
});

const trustFileSchema = z.strictObject({
  format: z.literal(TRUST_FILE_FORMAT),
  version: z.number().int().min(1),
  issuedAtMs: z.number().int().positive(),
  expiresAtMs: z.number().int().positive(),
  hwmFloor: z.number().int().min(0).default(0),
  keys: z.array(keySchema).min(1).max(MAX_KEYSET_KEYS),
  // The offline root keys pinned at install time: the only keys that can sign an update of this set. Required:
  // a host with no root pinned could never take a key rotation.
  rootKeys: z.array(keySchema).min(1, "pin at least one root key (lanekeeper keys root-init)").max(MAX_KEYSET_KEYS),
});

/** Serialize a key set as a trust file (pretty JSON with a trailing newline). */
export function formatTrustFile(set: TrustedKeySet): string {
  validateKeySet(set);
  const name = (s: KeyStatus): StatusName => (Object.keys(STATUS_NAMES) as StatusName[]).find((n) => STATUS_NAMES[n] === s) ?? "revoked";
  const keyDoc = (k: TrustedKey) => ({
    keyId: k.keyId,
    publicKey: Buffer.from(k.publicKey).toString("base64"),
    notBeforeMs: k.notBeforeMs,
    notAfterMs: k.notAfterMs,
    status: name(k.status),
  });
  const doc = {
    format: TRUST_FILE_FORMAT,
    version: set.version,
    issuedAtMs: set.issuedAtMs,
    expiresAtMs: set.expiresAtMs,
    hwmFloor: set.hwmFloor,
    keys: set.keys.map(keyDoc),
    rootKeys: set.rootKeys.map(keyDoc),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/**
 * Parse a trust file. Throws `ConfigError` with paths, naming `file` when given; the set is also structurally
 * validated.
 */
export function parseTrustFile(text: string, file?: string): TrustedKeySet {
  if (Buffer.byteLength(text, "utf8") > MAX_CONFIG_BYTES) throw new ConfigError("trust file", [{ path: "", message: "too large" }], { file });
  let data: unknown;
  try {
    data = JSON.parse(text, (key, value: unknown) => {
      if (key === "__proto__" || key === "constructor" || key === "prototype") throw new SyntaxError(`key "${key}" is not allowed`);
      return value;
    });
  } catch (err) {
    throw new ConfigError("trust file", [{ path: "", message: `not valid JSON: ${(err as Error).message}` }], { file });
  }
  const doc = validateConfig(data, trustFileSchema, "trust file", undefined, file);
  const keyOf = (k: z.infer<typeof keySchema>): TrustedKey => ({
    keyId: k.keyId,
    publicKey: Buffer.from(k.publicKey, "base64"),
    notBeforeMs: k.notBeforeMs,
    notAfterMs: k.notAfterMs,
    status: STATUS_NAMES[k.status],
  });
  const set: TrustedKeySet = {
    version: doc.version,
    issuedAtMs: doc.issuedAtMs,
    expiresAtMs: doc.expiresAtMs,
    hwmFloor: doc.hwmFloor,
    keys: doc.keys.map(keyOf),
    rootKeys: doc.rootKeys.map(keyOf),
  };
  try {
    validateKeySet(set);
  } catch (err) {
    if (err instanceof RejectError) throw new ConfigError("trust file", [{ path: "keys", message: err.message }], { file, cause: err });
    throw err;
  }
  return set;
}
