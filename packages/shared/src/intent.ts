/**
 * Intents: building and signing them (coordinator), and verification steps 1–6 of
 * `reference/security-cases.md` (agent): size → envelope → trusted key → signature → strict decode with field
 * caps → issuer, audience, subject → time window. Replay, allowlist and ownership (steps 7–9) belong to the
 * agent's intake.
 */
import { randomBytes } from "node:crypto";
import type { Clock } from "./clock.js";
import { openEnvelope, signEnvelope } from "./envelope.js";
import { RejectError, RejectReason } from "./errors.js";
import { IntentPayload, type SealedSecret, type UpgradeLane } from "./gen/lanekeeper/v1/intent.js";
import { Backend, LaneMode, type LaneSpec, type RunnerDownload } from "./gen/lanekeeper/v1/lane.js";
import type { SigningKey } from "./keys.js";
import type { TrustedKeyStore } from "./keyset.js";
import { parseIdentityLabels } from "./labels.js";
import {
  DEFAULT_INTENT_TTL_MS,
  INTENT_ID_CHARS,
  MAX_HOST_ID_CHARS,
  MAX_IMAGE_REF_CHARS,
  MAX_KEY_ID_CHARS,
  MAX_LABEL_CHARS,
  MAX_LABELS,
  MAX_LANE_ID_CHARS,
  MAX_POOL_NAME_CHARS,
  MAX_REF_CHARS,
  MAX_RUNNER_GROUP_CHARS,
  MAX_RUNNER_VERSION_CHARS,
  MAX_SEALED_CIPHERTEXT_BYTES,
  MAX_TEXT_CHARS,
  MAX_URL_CHARS,
  RAW_PUBLIC_KEY_BYTES,
} from "./limits.js";
import {
  validateImageRef,
  validateLabels,
  validateLaneId,
  validatePoolName,
  validateRunnerGroup,
  validateRunnerVersion,
  validateScope,
} from "./names.js";
import { checkRunnerDownloadFields } from "./runner-download.js";
import { decodeStrict } from "./strict-decode.js";
import { checkTimeWindow } from "./time-window.js";

/** The typed action an intent carries. */
export type IntentAction = NonNullable<IntentPayload["action"]>;
/** Name of an intent's action (`create`, `drain`, ...): the unit of the agent's `control.actions` allowlist. */
export type ActionKind = IntentAction["$case"];
/** Every action kind, in protocol order. */
export const ACTION_KINDS: readonly ActionKind[] = Object.freeze([
  "create",
  "drain",
  "undrain",
  "start",
  "stop",
  "restart",
  "remove",
  "hold",
  "release",
  "arm",
  "upgrade",
] as const);

/** The action kind of an intent. Throws `RejectError(NO_ACTION)` when none is set. */
export function actionKind(intent: IntentPayload): ActionKind {
  if (!intent.action) throw new RejectError(RejectReason.NO_ACTION, "intent carries no action");
  return intent.action.$case;
}

/** The lane an intent targets (every action targets exactly one lane). */
export function laneIdOf(intent: IntentPayload): string {
  const a = intent.action;
  if (!a) throw new RejectError(RejectReason.NO_ACTION, "intent carries no action");
  if (a.$case === "create") return a.value.spec?.laneId ?? "";
  return a.value.laneId;
}

/** A fresh 128-bit intent id in lower-case hex. */
export function newIntentId(): string {
  return randomBytes(INTENT_ID_CHARS / 2).toString("hex");
}

/** Inputs of {@link buildIntent}. */
export interface BuildIntentFields {
  /** The one host that may execute it. */
  audienceHost: string;
  /** Signing key (its id becomes `issuerKeyId`). */
  issuer: Pick<SigningKey, "keyId">;
  /** Per-host sequence allocated durably by the coordinator (≥ 1). */
  sequence: number;
  action: IntentAction;
  /** Issue time. */
  nowMs: number;
  /**
   * Lifetime from `nowMs`.
   * @default DEFAULT_INTENT_TTL_MS (60 s)
   */
  ttlMs?: number;
  /** @default a fresh random id */
  intentId?: string;
  /** @default "" */
  operationId?: string;
  /** @default "" */
  forcedBy?: string;
  /** @default empty */
  paramsSha256?: Buffer;
  /** The issuing coordinator's fencing token (leader epoch); agents refuse one below the highest seen. @default 0 (none) */
  fencingToken?: number;
}

/** Assemble an intent: `notBefore = issuedAt = nowMs`, `expiresAt = nowMs + ttlMs`. */
export function buildIntent(f: BuildIntentFields): IntentPayload {
  const intent: IntentPayload = {
    intentId: f.intentId ?? newIntentId(),
    issuerKeyId: f.issuer.keyId,
    audienceHost: f.audienceHost,
    issuedAtMs: f.nowMs,
    notBeforeMs: f.nowMs,
    expiresAtMs: f.nowMs + (f.ttlMs ?? DEFAULT_INTENT_TTL_MS),
    sequence: f.sequence,
    paramsSha256: f.paramsSha256 ?? Buffer.alloc(0),
    operationId: f.operationId ?? "",
    forcedBy: f.forcedBy ?? "",
    fencingToken: f.fencingToken ?? 0,
    action: f.action,
  };
  checkIntentFields(intent);
  return intent;
}

/** Encode an intent payload (canonical protobuf). */
export function encodeIntent(intent: IntentPayload): Uint8Array {
  return IntentPayload.encode(intent).finish();
}

/** Encode and sign an intent; returns the `SignedEnvelope` bytes to publish. */
export function signIntent(intent: IntentPayload, key: SigningKey): Uint8Array {
  if (intent.issuerKeyId !== key.keyId) {
    throw new RejectError(RejectReason.ISSUER_MISMATCH, "intent issuerKeyId must be the id of the key that signs it");
  }
  return signEnvelope("intent", encodeIntent(intent), key);
}

function capped(what: string, s: string, max: number): void {
  if (s.length > max) throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `${what} is ${s.length} characters, at most ${max}`);
}

function checkSealed(what: string, s: SealedSecret | undefined): void {
  if (!s) return;
  capped(`${what}.recipientKeyId`, s.recipientKeyId, MAX_KEY_ID_CHARS);
  if (s.ephemeralPublicKey.length > RAW_PUBLIC_KEY_BYTES || s.nonce.length > 32 || s.ciphertext.length > MAX_SEALED_CIPHERTEXT_BYTES) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `${what} has an oversized field`);
  }
}

function checkDownload(what: string, d: RunnerDownload | undefined): void {
  if (d !== undefined) checkRunnerDownloadFields(what, d);
}

function checkSpec(spec: LaneSpec | undefined): void {
  if (!spec) throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "create intent has no lane spec");
  capped("spec.laneId", spec.laneId, MAX_LANE_ID_CHARS);
  capped("spec.scope", spec.scope, 1 + 4 + 39 + 100);
  capped("spec.pool", spec.pool, MAX_POOL_NAME_CHARS);
  capped("spec.runnerGroup", spec.runnerGroup, MAX_RUNNER_GROUP_CHARS);
  capped("spec.githubUrl", spec.githubUrl, MAX_URL_CHARS);
  // Over the cap, the name validator judges it (INVALID_NAME), so a control character is named as such rather
  // than reported as a length.
  if (spec.runnerVersion.length > MAX_RUNNER_VERSION_CHARS) validateRunnerVersion(spec.runnerVersion);
  capped("spec.image", spec.image, MAX_IMAGE_REF_CHARS);
  if (spec.labels.length > MAX_LABELS) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `spec has ${spec.labels.length} labels, at most ${MAX_LABELS}`);
  }
  for (const l of spec.labels) capped("spec label", l, MAX_LABEL_CHARS);
  if (spec.backend !== Backend.BACKEND_SYSTEMD && spec.backend !== Backend.BACKEND_CONTAINER) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `spec.backend ${spec.backend} is not a known backend`);
  }
  if (spec.mode !== LaneMode.LANE_MODE_PERSISTENT && spec.mode !== LaneMode.LANE_MODE_EPHEMERAL) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `spec.mode ${spec.mode} is not a known mode`);
  }
  checkDownload("spec.runnerDownload", spec.runnerDownload);
  if (spec.runnerDownload !== undefined && spec.backend !== Backend.BACKEND_SYSTEMD) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "spec.runnerDownload applies to systemd lanes only (the image pins a container lane's runner)");
  }
}

/**
 * Field caps of a decoded intent (`PAYLOAD_MALFORMED`): intent id is 32 lower-case hex, lengths within limits,
 * sequence ≥ 1, enums known, `paramsSha256` empty or 32 bytes; a missing action is `NO_ACTION`. Name syntax is
 * left to {@link validateIntentNames} (`INVALID_NAME`/`INVALID_LABEL`, step 8); audience and issuer values are
 * compared, not validated, in step 5.
 */
export function checkIntentFields(intent: IntentPayload): void {
  if (!/^[0-9a-f]{32}$/.test(intent.intentId)) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `intent id must be ${INTENT_ID_CHARS} lower-case hex characters`);
  }
  capped("issuerKeyId", intent.issuerKeyId, MAX_KEY_ID_CHARS);
  capped("audienceHost", intent.audienceHost, MAX_HOST_ID_CHARS);
  capped("operationId", intent.operationId, MAX_REF_CHARS);
  capped("forcedBy", intent.forcedBy, MAX_REF_CHARS);
  if (!Number.isSafeInteger(intent.sequence) || intent.sequence < 1) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "sequence must be a positive integer");
  }
  if (!Number.isSafeInteger(intent.fencingToken) || intent.fencingToken < 0) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "fencingToken must be a non-negative integer");
  }
  if (intent.paramsSha256.length !== 0 && intent.paramsSha256.length !== 32) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "paramsSha256 must be empty or 32 bytes");
  }
  const a = intent.action;
  if (!a) throw new RejectError(RejectReason.NO_ACTION, "intent carries no action");
  switch (a.$case) {
    case "create":
      checkSpec(a.value.spec);
      checkSealed("create.registration", a.value.registration);
      return;
    case "remove":
      capped("laneId", a.value.laneId, MAX_LANE_ID_CHARS);
      checkSealed("remove.removeToken", a.value.removeToken);
      return;
    case "arm":
      capped("laneId", a.value.laneId, MAX_LANE_ID_CHARS);
      checkSealed("arm.jitConfig", a.value.jitConfig);
      return;
    case "hold":
      capped("laneId", a.value.laneId, MAX_LANE_ID_CHARS);
      capped("hold.reason", a.value.reason, MAX_TEXT_CHARS);
      return;
    case "upgrade":
      checkUpgradeFields(a.value);
      return;
    default:
      capped("laneId", a.value.laneId, MAX_LANE_ID_CHARS);
  }
}

/** Caps and shape of an upgrade: exactly one of runner version (systemd) and image (container). */
function checkUpgradeFields(u: UpgradeLane): void {
  capped("laneId", u.laneId, MAX_LANE_ID_CHARS);
  if (u.runnerVersion.length > MAX_RUNNER_VERSION_CHARS) validateRunnerVersion(u.runnerVersion);
  capped("upgrade.image", u.image, MAX_IMAGE_REF_CHARS);
  if ((u.runnerVersion === "") === (u.image === "")) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "upgrade names exactly one of runnerVersion (systemd lane) and image (container lane)");
  }
  checkDownload("upgrade.runnerDownload", u.runnerDownload);
  if (u.runnerDownload !== undefined && u.runnerVersion === "") {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "upgrade.runnerDownload goes with a runnerVersion");
  }
}

/** Decode an intent payload strictly (canonical encoding only) and check its field caps. */
export function decodeIntentPayload(bytes: Uint8Array): IntentPayload {
  const intent = decodeStrict(IntentPayload, bytes, "intent payload", RejectReason.PAYLOAD_MALFORMED);
  checkIntentFields(intent);
  return intent;
}

/**
 * Step 8's name checks for an intent addressed to `hostId`: the lane id; for `upgrade`, the runner version or
 * digest-pinned image; for `create`, the scope, pool, runner
 * group, runner version (systemd) or digest-pinned image (container), and labels, which must carry exactly the
 * canonical identity of this lane on this host and pool. Throws `INVALID_NAME` or `INVALID_LABEL`.
 */
export function validateIntentNames(intent: IntentPayload, hostId: string): void {
  const laneId = validateLaneId(laneIdOf(intent));
  const a = intent.action;
  if (a?.$case === "upgrade") {
    if (a.value.runnerVersion !== "") validateRunnerVersion(a.value.runnerVersion);
    if (a.value.image !== "") validateImageRef(a.value.image);
    return;
  }
  if (a?.$case !== "create" || !a.value.spec) return;
  const spec = a.value.spec;
  validateScope(spec.scope);
  validatePoolName(spec.pool);
  if (spec.runnerGroup !== "") validateRunnerGroup(spec.runnerGroup);
  if (spec.backend === Backend.BACKEND_SYSTEMD) validateRunnerVersion(spec.runnerVersion);
  if (spec.backend === Backend.BACKEND_CONTAINER) validateImageRef(spec.image);
  validateLabels(spec.labels, { allowReserved: true });
  const id = parseIdentityLabels(spec.labels);
  if (!id || id.laneId !== laneId || id.hostId !== hostId || id.pool !== spec.pool) {
    throw new RejectError(
      RejectReason.INVALID_LABEL,
      `lane labels must carry exactly lk-managed, lk-lane-${laneId}, lk-host-${hostId} and lk-pool-${spec.pool}`,
    );
  }
  const extraReserved = spec.labels.filter(
    (l) => l.toLowerCase().startsWith("lk-") && !["lk-managed", `lk-lane-${laneId}`, `lk-host-${hostId}`, `lk-pool-${spec.pool}`].includes(l),
  );
  if (extraReserved.length > 0) {
    throw new RejectError(RejectReason.INVALID_LABEL, `lane labels carry reserved labels ${extraReserved.join(", ")}`);
  }
}

/** Inputs of {@link verifyIntent}. */
export interface VerifyIntentContext {
  /** This agent's host id (from its config). */
  hostId: string;
  /** The host named by the NATS subject the intent arrived on. */
  subjectHost: string;
  keys: TrustedKeyStore;
  clock: Clock;
  /** @default CLOCK_SKEW_MS (30 s) */
  skewMs?: number;
  /** @default MAX_INTENT_TTL_MS (120 s) */
  maxTtlMs?: number;
}

/** A verified intent. */
export interface VerifiedIntent {
  intent: IntentPayload;
  /** SHA-256 of the exact payload bytes. */
  digest: Buffer;
  /** Id of the key that verified it. */
  keyId: string;
}

/**
 * Verification steps 1–6 of `reference/security-cases.md`. Reads the clock once, so every time-dependent check
 * sees the same instant. Every failure is a `RejectError` with its `RejectReason`.
 */
export function verifyIntent(bytes: Uint8Array, ctx: VerifyIntentContext): VerifiedIntent {
  const now = ctx.clock.now();
  // Steps 1–4a: size, envelope, trusted key (unknown/revoked/out of window), signature over the PAE.
  const opened = openEnvelope("intent", bytes, ctx.keys.resolver(now), { now: () => now });
  // Step 4b: decode exactly the verified bytes, once, strictly.
  const intent = decodeIntentPayload(opened.payload);
  // Step 5: who signed, who it is for, where it arrived.
  if (intent.issuerKeyId !== opened.keyId) {
    throw new RejectError(RejectReason.ISSUER_MISMATCH, "issuer_key_id does not name the key that signed the intent", {
      details: { keyId: opened.keyId },
    });
  }
  if (intent.audienceHost !== ctx.hostId) {
    throw new RejectError(RejectReason.AUDIENCE_MISMATCH, `intent is addressed to ${JSON.stringify(intent.audienceHost)}, not to this host`, {
      details: { intentId: intent.intentId },
    });
  }
  if (ctx.subjectHost !== ctx.hostId) {
    throw new RejectError(RejectReason.SUBJECT_MISMATCH, `intent arrived on the subject of host ${JSON.stringify(ctx.subjectHost)}`, {
      details: { intentId: intent.intentId },
    });
  }
  // Step 6: time window.
  const windowOpts: { skewMs?: number; maxTtlMs?: number } = {};
  if (ctx.skewMs !== undefined) windowOpts.skewMs = ctx.skewMs;
  if (ctx.maxTtlMs !== undefined) windowOpts.maxTtlMs = ctx.maxTtlMs;
  checkTimeWindow(intent, now, windowOpts);
  return { intent, digest: opened.digest, keyId: opened.keyId };
}
