/**
 * The enrollment bundle: what `lanekeeper-agent init` prints and `lanekeeper hosts add` reads. One schema, one
 * printer and one reader, so the two sides cannot drift. It carries public keys only, each with its key id
 * (`keyIdOf`, the hex SHA-256 of the raw key) as a real field: a key altered in transit, by a typo or on
 * purpose, no longer matches its id and the bundle is refused before anything is written.
 */
import { stringify } from "yaml";
import { z } from "zod";
import { hostIdField } from "./config-fields.js";
import { parseYamlDocument, validateConfig } from "./config-loader.js";
import { ConfigError, LanekeeperError, type SharedErrorCode } from "./errors.js";
import type { Capabilities } from "./gen/lanekeeper/v1/lane.js";
import { keyIdOf, parseSealingPublicKey, parseSigningPublicKey } from "./keys.js";

/** Why a bundle was refused; the error's `reason`. The error's `code` is always `ENROLLMENT_INVALID`. */
export enum EnrollmentBundleReason {
  /** Not one YAML or JSON document, or one with duplicate keys, a BOM, `__proto__` keys, ... */
  UNREADABLE = "UNREADABLE",
  /** A field is missing, unknown or of the wrong type (the message lists them as `path: message`). */
  MALFORMED = "MALFORMED",
  /** The `<hostId>: {enrolled: ...}` snippet printed by agents before key ids were fields. */
  OLD_FORMAT = "OLD_FORMAT",
  /** A public key cannot be parsed. */
  KEY_INVALID = "KEY_INVALID",
  /** A public key does not hash to its key id: the bundle was altered or mis-copied. */
  KEY_ID_MISMATCH = "KEY_ID_MISMATCH",
  /** The bundle claims `optIn: true`; only the coordinator's operator opts a host in. */
  OPT_IN = "OPT_IN",
}

/** An enrollment bundle was refused. `code` is `ENROLLMENT_INVALID`; tests and callers match on `reason`. */
export class EnrollmentBundleError extends LanekeeperError<SharedErrorCode> {
  readonly reason: EnrollmentBundleReason;

  constructor(reason: EnrollmentBundleReason, message: string, options: { cause?: unknown } = {}) {
    super("ENROLLMENT_INVALID", `enrollment bundle refused (${reason}): ${message}`, { ...options, details: { reason } });
    this.reason = reason;
  }
}

const keyIdField = z
  .string()
  .regex(/^[0-9a-f]{64}$/, "must be the 64 lowercase hex characters of the key's SHA-256 (lanekeeper-agent prints it)");
const publicKeyField = z.string().max(512);

const capabilitiesSchema = z.strictObject({
  os: z.string().max(64),
  arch: z.string().max(64),
  cores: z.number().int().min(0),
  memoryBytes: z.number().int().min(0),
  diskFreeBytes: z.number().int().min(0),
  containerEngine: z.string().max(64),
  gpus: z.array(z.string().max(256)).max(64),
  kernel: z.string().max(256),
});

/** The enrollment bundle's schema; the same fields in its YAML and its JSON form. */
export const enrollmentBundleSchema = z.strictObject({
  hostId: hostIdField,
  /** Ed25519 identity public key: base64 of the raw 32 bytes (or an SPKI PEM). */
  identityKey: publicKeyField,
  /** `keyIdOf` the identity key. */
  identityKeyId: keyIdField,
  /** X25519 sealing public key: base64 of the raw 32 bytes (or an SPKI PEM). */
  sealingKey: publicKeyField,
  /** `keyIdOf` the sealing key. */
  sealingKeyId: keyIdField,
  /** Always false: `hosts add` writes `optIn: false` unless its operator passes `--opt-in`. */
  optIn: z.boolean(),
  /** Most lanes on the host; `hosts add --capacity` overrides it. 0 until someone decides. */
  capacity: z.number().int().min(0).max(1000),
  agentVersion: z.string().max(64),
  capabilities: capabilitiesSchema.optional(),
});

/** An enrollment bundle (public keys only). */
export interface EnrollmentBundle {
  readonly hostId: string;
  readonly identityKey: string;
  readonly identityKeyId: string;
  readonly sealingKey: string;
  readonly sealingKeyId: string;
  readonly optIn: boolean;
  readonly capacity: number;
  readonly agentVersion: string;
  readonly capabilities?: Capabilities | undefined;
}

type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _bundleMatches: Equal<z.output<typeof enrollmentBundleSchema>, { -readonly [K in keyof EnrollmentBundle]: EnrollmentBundle[K] }> = true;
void _bundleMatches;

/** The bundle of a host's keys; `optIn` is false and `capacity` 0, as `hosts add` writes them by default. */
export function makeEnrollmentBundle(input: {
  hostId: string;
  identityPublicKey: Uint8Array;
  sealingPublicKey: Uint8Array;
  agentVersion: string;
  capabilities?: Capabilities | undefined;
}): EnrollmentBundle {
  return checkedBundle({
    hostId: input.hostId,
    identityKey: Buffer.from(input.identityPublicKey).toString("base64"),
    identityKeyId: keyIdOf(input.identityPublicKey),
    sealingKey: Buffer.from(input.sealingPublicKey).toString("base64"),
    sealingKeyId: keyIdOf(input.sealingPublicKey),
    optIn: false,
    capacity: 0,
    agentVersion: input.agentVersion,
    ...(input.capabilities ? { capabilities: input.capabilities } : {}),
  });
}

/** The bundle as JSON (`lanekeeper-agent init --json`). */
export function enrollmentBundleJson(b: EnrollmentBundle): string {
  return `${JSON.stringify(checkedBundle(b), null, 2)}\n`;
}

/** The bundle as YAML with a comment saying what to do with it (`lanekeeper-agent init`). */
export function enrollmentBundleYaml(b: EnrollmentBundle): string {
  const checked = checkedBundle(b);
  const caps = checked.capabilities;
  return (
    `# Enrollment bundle of ${checked.hostId}: public keys only. Key ids are checked against the keys; edit nothing.\n` +
    "# Enroll it on the coordinator: lanekeeper hosts add <this file> [--opt-in] [--capacity n]\n" +
    (caps
      ? `# ${caps.os} ${caps.arch}, ${caps.cores} cores, ${Math.round(caps.memoryBytes / 2 ** 30)} GiB, engine ${caps.containerEngine || "none"}\n`
      : "") +
    stringify(checked)
  );
}

/**
 * Read a bundle in either form (YAML or JSON: JSON is YAML) and check it: every field, the host id, both keys,
 * each key against its key id, `optIn: false`.
 * @throws EnrollmentBundleError
 */
export function parseEnrollmentBundle(text: string): EnrollmentBundle {
  let data: unknown;
  try {
    data = parseYamlDocument(text, "enrollment bundle");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new EnrollmentBundleError(EnrollmentBundleReason.UNREADABLE, `${issueText(err)}; copy it again from the host`, { cause: err });
  }
  if (isOldSnippet(data)) {
    throw new EnrollmentBundleError(
      EnrollmentBundleReason.OLD_FORMAT,
      "this is the `<hostId>: {enrolled: ...}` snippet of an older lanekeeper-agent, without key ids, so a mis-copied key " +
        "cannot be caught; upgrade the agent and print its bundle again",
    );
  }
  return checkedBundle(data);
}

function checkedBundle(data: unknown): EnrollmentBundle {
  let b: EnrollmentBundle;
  try {
    b = validateConfig(data, enrollmentBundleSchema, "enrollment bundle");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new EnrollmentBundleError(EnrollmentBundleReason.MALFORMED, `${issueText(err)}; print it again with lanekeeper-agent init`, {
      cause: err,
    });
  }
  checkKey("identityKey", parseSigningPublicKey, b.identityKey, b.identityKeyId);
  checkKey("sealingKey", parseSealingPublicKey, b.sealingKey, b.sealingKeyId);
  if (b.optIn) {
    throw new EnrollmentBundleError(
      EnrollmentBundleReason.OPT_IN,
      "optIn: true; a host is opted in on the coordinator (lanekeeper hosts add --opt-in), never by its bundle; set it back to false",
    );
  }
  return b;
}

function checkKey(field: "identityKey" | "sealingKey", parse: (s: string) => Buffer, key: string, claimedId: string): void {
  let raw: Buffer;
  try {
    raw = parse(key);
  } catch (err) {
    const why = err instanceof LanekeeperError ? err.message : "cannot be parsed";
    throw new EnrollmentBundleError(EnrollmentBundleReason.KEY_INVALID, `${field}: ${why}; copy the bundle again from the host`, { cause: err });
  }
  if (keyIdOf(raw) !== claimedId) {
    throw new EnrollmentBundleError(
      EnrollmentBundleReason.KEY_ID_MISMATCH,
      `${field} does not match ${field}Id (the bundle was altered or mis-copied); copy it again from the host, unedited, ` +
        "and check that the key id matches what lanekeeper-agent init printed there",
    );
  }
}

function issueText(err: ConfigError): string {
  return err.issues.map((i) => `${i.path === "" ? "(document)" : i.path}: ${i.message}`).join("; ");
}

function isOldSnippet(data: unknown): boolean {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return false;
  const keys = Object.keys(data);
  if (keys.length !== 1 || keys[0] === "hostId") return false;
  const entry = (data as Record<string, unknown>)[keys[0] ?? ""];
  return typeof entry === "object" && entry !== null && "enrolled" in entry;
}
