import { createHash } from "node:crypto";
import {
  buildIntent,
  DEFAULT_INTENT_TTL_MS,
  encodeIntent,
  LanekeeperError,
  MAX_INTENT_TTL_MS,
  newIntentId,
  sealContext,
  sealSecret,
  signEnvelope,
  type IntentAction as WireAction,
  type IntentPayload,
  type LaneSpec,
  type RunnerDownload,
  type SealPurpose,
  type SigningKey,
} from "@lanekeeper/shared";
import { DEFAULT_NOT_BEFORE_SLACK_MS } from "./limits.js";
import type { CoordinatorErrorCode } from "../error-codes.js";

/**
 * An action to send to a host, with secrets in the clear (they are sealed to the host's X25519 key for each
 * intent built, bound to the intent id; the caller should wipe its buffers after dispatch).
 */
export type DispatchAction =
  | { readonly kind: "create"; readonly spec: LaneSpec; readonly registration: Uint8Array }
  | { readonly kind: "drain"; readonly laneId: string }
  | { readonly kind: "undrain"; readonly laneId: string }
  | { readonly kind: "start"; readonly laneId: string }
  | { readonly kind: "stop"; readonly laneId: string; readonly force?: boolean }
  | { readonly kind: "restart"; readonly laneId: string; readonly force?: boolean }
  | { readonly kind: "remove"; readonly laneId: string; readonly force?: boolean; readonly removeToken?: Uint8Array }
  | { readonly kind: "hold"; readonly laneId: string; readonly reason: string }
  | { readonly kind: "release"; readonly laneId: string }
  | { readonly kind: "arm"; readonly laneId: string; readonly jitConfig: Uint8Array }
  | {
      readonly kind: "upgrade";
      readonly laneId: string;
      /** systemd lanes: the version to run, and where the agent fetches it (checked against its allowlist). */
      readonly runnerVersion: string;
      readonly runnerDownload?: RunnerDownload | undefined;
      /** container lanes: the image, pinned by digest. */
      readonly image: string;
    };

/** The lane a dispatch action targets. */
export function dispatchLaneId(a: DispatchAction): string {
  return a.kind === "create" ? a.spec.laneId : a.laneId;
}

/** Inputs of {@link buildSignedIntent}. */
export interface BuildSignedIntentArgs {
  /** The audience host. */
  hostId: string;
  /** The host's raw X25519 sealing key (from its enrollment). */
  hostSealingKey: Uint8Array;
  /** Sequence allocated durably for this host. */
  sequence: number;
  action: DispatchAction;
  /** The coordinator's active signing key. */
  signingKey: SigningKey;
  /** Current time. */
  nowMs: number;
  /** Lifetime after `nowMs`. @default DEFAULT_INTENT_TTL_MS */
  ttlMs?: number;
  /** `issued_at = not_before = now − slack`. @default DEFAULT_NOT_BEFORE_SLACK_MS */
  notBeforeSlackMs?: number;
  operationId?: string;
  forcedBy?: string;
  /** @default a fresh 128-bit random id */
  intentId?: string;
  /** The coordinator's fencing token (leader epoch), which agents check. @default 0 (none) */
  fencingToken?: number;
}

/** A built and signed intent. */
export interface SignedIntent {
  readonly intent: IntentPayload;
  /** The encoded `SignedEnvelope` to publish. */
  readonly envelope: Uint8Array;
  /** SHA-256 of the payload bytes (what the agent's result echoes). */
  readonly digest: Buffer;
}

/** A dispatch option was out of range (for example a TTL above `MAX_INTENT_TTL_MS`). */
export class DispatchOptionsError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string) {
    super("DISPATCH_OPTIONS_INVALID", message);
  }
}

/**
 * Build, seal and sign one intent. A fresh intent id is drawn first so every sealed secret is bound to it
 * (shared `sealContext`). `issued_at` and `not_before` are `now − slack` (shared requires `not_before ≥
 * issued_at`), so an agent whose clock runs slightly behind does not see the intent as early; the lifetime
 * `ttl + slack` must stay within `MAX_INTENT_TTL_MS`.
 */
export function buildSignedIntent(args: BuildSignedIntentArgs): SignedIntent {
  const ttl = args.ttlMs ?? DEFAULT_INTENT_TTL_MS;
  const slack = args.notBeforeSlackMs ?? DEFAULT_NOT_BEFORE_SLACK_MS;
  if (!(ttl > 0) || !(slack >= 0) || ttl + slack > MAX_INTENT_TTL_MS) {
    throw new DispatchOptionsError(`ttl ${ttl} ms + slack ${slack} ms must be positive and at most ${MAX_INTENT_TTL_MS} ms`);
  }
  const intentId = args.intentId ?? newIntentId();
  const seal = (purpose: SealPurpose, laneId: string, secret: Uint8Array) =>
    sealSecret(args.hostSealingKey, secret, sealContext({ purpose, hostId: args.hostId, laneId, intentId }));
  const intent = buildIntent({
    audienceHost: args.hostId,
    issuer: args.signingKey,
    sequence: args.sequence,
    action: toWireAction(args.action, seal),
    nowMs: args.nowMs - slack,
    ttlMs: ttl + slack,
    intentId,
    operationId: args.operationId ?? "",
    forcedBy: args.forcedBy ?? "",
    fencingToken: args.fencingToken ?? 0,
  });
  const payload = encodeIntent(intent);
  return {
    intent,
    envelope: signEnvelope("intent", payload, args.signingKey),
    digest: createHash("sha256").update(payload).digest(),
  };
}

type Sealer = (purpose: SealPurpose, laneId: string, secret: Uint8Array) => ReturnType<typeof sealSecret>;

function toWireAction(a: DispatchAction, seal: Sealer): WireAction {
  switch (a.kind) {
    case "create":
      return { $case: "create", value: { spec: a.spec, registration: seal("registration", a.spec.laneId, a.registration) } };
    case "arm":
      return { $case: "arm", value: { laneId: a.laneId, jitConfig: seal("jit-config", a.laneId, a.jitConfig) } };
    case "remove":
      return {
        $case: "remove",
        value: {
          laneId: a.laneId,
          force: a.force ?? false,
          removeToken: a.removeToken === undefined ? undefined : seal("remove-token", a.laneId, a.removeToken),
        },
      };
    case "drain":
      return { $case: "drain", value: { laneId: a.laneId } };
    case "undrain":
      return { $case: "undrain", value: { laneId: a.laneId } };
    case "start":
      return { $case: "start", value: { laneId: a.laneId } };
    case "stop":
      return { $case: "stop", value: { laneId: a.laneId, force: a.force ?? false } };
    case "restart":
      return { $case: "restart", value: { laneId: a.laneId, force: a.force ?? false } };
    case "hold":
      return { $case: "hold", value: { laneId: a.laneId, reason: a.reason } };
    case "release":
      return { $case: "release", value: { laneId: a.laneId } };
    case "upgrade":
      return { $case: "upgrade", value: { laneId: a.laneId, runnerVersion: a.runnerVersion, runnerDownload: a.runnerDownload, image: a.image } };
  }
}
