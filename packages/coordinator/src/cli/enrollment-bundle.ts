import { keyIdOf, LanekeeperError, parseSealingPublicKey, parseSigningPublicKey, validateHostId } from "@lanekeeper/shared";
import { parse as parseYaml } from "yaml";
import { CliError } from "./cli-errors.js";

/** An agent's enrollment bundle, validated: what `hosts add` writes into the policy. */
export interface EnrollmentBundle {
  readonly hostId: string;
  /** Ed25519 identity public key, as given (base64 raw or SPKI PEM). */
  readonly identityKey: string;
  readonly identityKeyId: string;
  /** X25519 sealing public key, as given. */
  readonly sealingKey: string;
  readonly sealingKeyId: string;
  /** Capacity from the bundle, if it has one above zero. */
  readonly capacity: number | undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function bad(message: string): CliError {
  return new CliError("ENROLLMENT_INVALID", `enrollment bundle: ${message}`);
}

/**
 * Parse the bundle `lanekeeper-agent init` prints, in either form: its JSON (`--json`:
 * `{hostId, identityKey, identityKeyId, sealingKey, sealingKeyId, ...}`) or its YAML snippet
 * (`<hostId>: {enrolled: {identityKey, sealingKey}, ...}`). The host id and both keys are validated; key ids,
 * when present, must match the keys (a mangled copy is caught here, not at the first intent).
 */
export function parseEnrollmentBundle(text: string): EnrollmentBundle {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 0, uniqueKeys: true });
  } catch (err) {
    throw bad(`not JSON or YAML (${err instanceof Error ? err.message.split("\n")[0] : "parse error"})`);
  }
  if (!isObj(doc)) throw bad("expected an object");
  let hostId: unknown;
  let fields: Obj;
  let capacity: unknown;
  if ("hostId" in doc) {
    hostId = doc.hostId;
    fields = doc;
  } else {
    const keys = Object.keys(doc);
    if (keys.length !== 1) throw bad("expected {hostId, identityKey, sealingKey, ...} or a single `<hostId>: {enrolled: ...}` entry");
    hostId = keys[0];
    const entry = doc[keys[0] ?? ""];
    if (!isObj(entry) || !isObj(entry.enrolled)) throw bad(`entry ${String(hostId)} has no enrolled: {identityKey, sealingKey}`);
    fields = entry.enrolled;
    capacity = entry.capacity;
  }
  try {
    validateHostId(hostId);
  } catch (err) {
    throw bad(err instanceof LanekeeperError ? err.message : "invalid host id");
  }
  const id = hostId as string;
  const { identityKey, sealingKey } = fields;
  if (typeof identityKey !== "string" || typeof sealingKey !== "string") throw bad("identityKey and sealingKey must be strings");
  const check = (what: string, parse: (s: string) => Buffer, key: string, claimedId: unknown): string => {
    let raw: Buffer;
    try {
      raw = parse(key);
    } catch (err) {
      throw bad(`${what}: ${err instanceof LanekeeperError ? err.message : "cannot be parsed"}`);
    }
    const keyId = keyIdOf(raw);
    if (claimedId !== undefined && claimedId !== keyId) {
      throw bad(`${what} does not match its key id (the bundle was altered or mis-copied); print it again with lanekeeper-agent init --json`);
    }
    return keyId;
  };
  const identityKeyId = check("identityKey", parseSigningPublicKey, identityKey, fields.identityKeyId);
  const sealingKeyId = check("sealingKey", parseSealingPublicKey, sealingKey, fields.sealingKeyId);
  return {
    hostId: id,
    identityKey,
    identityKeyId,
    sealingKey,
    sealingKeyId,
    capacity: typeof capacity === "number" && Number.isInteger(capacity) && capacity > 0 ? capacity : undefined,
  };
}
