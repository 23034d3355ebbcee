import {
  allowedGithubOrigins,
  Backend,
  checkDownloadUrl,
  checkRunnerUrl,
  LaneMode,
  RejectError,
  RejectReason,
  validateIntentNames,
  type ActionKind,
  type AgentConfig,
  type Allowlist,
  type IntentPayload,
  type LaneObservation,
  type LaneSpec,
} from "@lanekeeper/shared";

/**
 * The agent's local consent (`control` in agent.yaml): what this host lets any coordinator do, whatever the
 * coordinator asks. Every list compares exactly (case-sensitive, no globs); an empty list allows nothing.
 * `AgentConfig["control"]` from `@lanekeeper/shared` has this shape.
 */
export interface IntakeControl {
  /** When false (the default) the agent only observes and reports; every intent is refused. */
  readonly enabled: boolean;
  /** Allowed scopes (`owner/repo`, `org:<org>`). */
  readonly scopes: readonly string[];
  /** Allowed pool names. */
  readonly pools: readonly string[];
  /** Allowed backends: `systemd`, `container`. */
  readonly backends: readonly string[];
  /** Allowed action kinds (`ACTION_KINDS` of `@lanekeeper/shared`). */
  readonly actions: readonly string[];
  /** Allowed container images, pinned by digest (`name@sha256:…`). */
  readonly images: readonly string[];
  /** Most managed lanes on this host. */
  readonly maxLanes: number;
  /**
   * GitHub origins a create's runner URL may name (`github.origins` plus `github.allowInsecureHttpOrigins` of
   * agent.yaml): the URL must be exactly one of them plus the scope's path.
   */
  readonly githubOrigins: readonly string[];
  /**
   * Origins a runner download URL in a create or upgrade may name (`runnerDownloads.origins` plus
   * `runnerDownloads.allowInsecureHttpOrigins`): a stolen coordinator key cannot make the host fetch code from
   * anywhere else.
   */
  readonly downloadOrigins: readonly string[];
}

/** The intake's view of the agent config: `control` plus the pinned GitHub and runner download origins. */
export function intakeControlOf(config: Pick<AgentConfig, "control" | "github" | "runnerDownloads">): IntakeControl {
  return {
    ...config.control,
    githubOrigins: allowedGithubOrigins(config.github),
    downloadOrigins: [...config.runnerDownloads.origins, ...config.runnerDownloads.allowInsecureHttpOrigins],
  };
}

/**
 * The allowlist as the agent reports it (signed inventory, status socket): a copy of the same `control` the
 * intake enforces, so the coordinator's planner refuses exactly what this host would refuse. Reported whether or
 * not control is enabled; `control_enabled` says that.
 */
export function allowlistOf(control: Omit<IntakeControl, "githubOrigins" | "downloadOrigins">): Allowlist {
  return {
    scopes: [...control.scopes],
    pools: [...control.pools],
    backends: [...control.backends],
    images: [...control.images],
    actions: [...control.actions],
    maxLanes: control.maxLanes,
  };
}

/** The backend name used in allowlists for a proto {@link Backend}. */
export function backendName(b: Backend): string | undefined {
  if (b === Backend.BACKEND_SYSTEMD) return "systemd";
  if (b === Backend.BACKEND_CONTAINER) return "container";
  return undefined;
}

/** What the policy step learned about an allowed intent. */
export interface AllowedIntent {
  readonly kind: ActionKind;
  readonly laneId: string;
}

function reject(reason: RejectReason, message: string): never {
  throw new RejectError(reason, message);
}

/**
 * Steps "control enabled" and "allowlist" of the intake for everything the intent itself carries: the action
 * kind, the origin of a runner download (`create`, `upgrade`), the image of an `upgrade`, and for `create` the
 * spec's scope, pool, backend and image (exact membership first, so a glob or a case
 * variant is reported as not allowed), then the strict name and label validators (`INVALID_NAME`,
 * `INVALID_LABEL`: reserved `lk-` labels only as this lane's exact identity on this host). Pure; throws a
 * {@link RejectError}.
 */
export function checkIntentAllowed(intent: IntentPayload, control: IntakeControl, hostId: string): AllowedIntent {
  if (!control.enabled) {
    reject(RejectReason.CONTROL_DISABLED, "control is disabled on this host (control.enabled: false); the agent only observes");
  }
  const a = intent.action;
  if (a === undefined) reject(RejectReason.NO_ACTION, "intent carries no action");
  if (!control.actions.includes(a.$case)) {
    reject(RejectReason.NOT_ALLOWED_ACTION, `action "${a.$case}" is not in this host's control.actions`);
  }
  if (a.$case === "create") {
    if (a.value.spec === undefined) reject(RejectReason.PAYLOAD_MALFORMED, "create carries no lane spec");
    checkSpecAllowlist(a.value.spec, control);
  }
  // Names and labels (lane id for every action; the whole spec for create).
  validateIntentNames(intent, hostId);
  if (a.$case === "create") {
    checkSpecShape(a.value.spec!);
    // The pinned origin (invariant 8): the registration, and the token in it, go nowhere else.
    checkRunnerUrl(a.value.spec!.githubUrl, a.value.spec!.scope, control.githubOrigins);
    // And the runner code comes only from where this host allows (checked again on every redirect).
    if (a.value.spec!.runnerDownload !== undefined) checkDownloadUrl(a.value.spec!.runnerDownload.url, control.downloadOrigins);
    if (a.value.registration === undefined) {
      reject(RejectReason.PAYLOAD_MALFORMED, "create carries no sealed registration token or JIT config");
    }
    return { kind: "create", laneId: a.value.spec!.laneId };
  }
  if (a.$case === "upgrade") {
    if (a.value.image !== "" && !control.images.includes(a.value.image)) {
      reject(RejectReason.NOT_ALLOWED_IMAGE, "image is not in this host's control.images (compared exactly, by digest)");
    }
    if (a.value.runnerDownload !== undefined) checkDownloadUrl(a.value.runnerDownload.url, control.downloadOrigins);
  }
  if (a.$case === "arm" && a.value.jitConfig === undefined) reject(RejectReason.PAYLOAD_MALFORMED, "arm carries no sealed JIT config");
  if (a.$case === "hold") {
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(a.value.reason)) reject(RejectReason.PAYLOAD_MALFORMED, "hold reason has control characters");
  }
  return { kind: a.$case, laneId: a.value.laneId };
}

/** Exact allowlist membership of a create spec: scope, pool, backend, and (container) image by digest. */
function checkSpecAllowlist(spec: LaneSpec, control: IntakeControl): void {
  if (!control.scopes.includes(spec.scope)) reject(RejectReason.NOT_ALLOWED_SCOPE, `scope ${JSON.stringify(spec.scope)} is not in this host's control.scopes`);
  if (!control.pools.includes(spec.pool)) reject(RejectReason.NOT_ALLOWED_POOL, `pool ${JSON.stringify(spec.pool)} is not in this host's control.pools`);
  const backend = backendName(spec.backend);
  if (backend === undefined || !control.backends.includes(backend)) {
    reject(RejectReason.NOT_ALLOWED_BACKEND, `backend "${backend ?? "unspecified"}" is not in this host's control.backends`);
  }
  if (backend === "container" && !control.images.includes(spec.image)) {
    reject(RejectReason.NOT_ALLOWED_IMAGE, "image is not in this host's control.images (compared exactly, by digest)");
  }
}

/** Cross-field shape of a create spec the validators do not cover. */
function checkSpecShape(spec: LaneSpec): void {
  if (spec.mode !== LaneMode.LANE_MODE_PERSISTENT && spec.mode !== LaneMode.LANE_MODE_EPHEMERAL) {
    reject(RejectReason.PAYLOAD_MALFORMED, "lane mode must be persistent or ephemeral");
  }
  if (spec.backend === Backend.BACKEND_CONTAINER && spec.runnerVersion !== "") {
    reject(RejectReason.PAYLOAD_MALFORMED, "a container lane takes an image, not a runner version");
  }
  if (spec.backend === Backend.BACKEND_SYSTEMD && spec.image !== "") {
    reject(RejectReason.PAYLOAD_MALFORMED, "a systemd lane takes a runner version, not an image");
  }
}

/**
 * The allowlist applied to an existing lane (every action but create): its scope, pool and backend must still
 * be allowed, so removing a pool from `control.pools` withdraws the coordinator's hands from those lanes.
 */
export function checkLaneAllowed(observed: LaneObservation, control: IntakeControl): void {
  if (!control.scopes.includes(observed.scope)) {
    reject(RejectReason.NOT_ALLOWED_SCOPE, `the lane's scope ${JSON.stringify(observed.scope)} is not in this host's control.scopes`);
  }
  if (!control.pools.includes(observed.pool)) {
    reject(RejectReason.NOT_ALLOWED_POOL, `the lane's pool ${JSON.stringify(observed.pool)} is not in this host's control.pools`);
  }
  const backend = backendName(observed.backend);
  if (backend === undefined || !control.backends.includes(backend)) {
    reject(RejectReason.NOT_ALLOWED_BACKEND, "the lane's backend is not in this host's control.backends");
  }
}

/**
 * Whether an existing owned lane already matches a create spec, which makes `create` idempotent by lane id:
 * a re-issued create for a lane that exists with the same scope, pool, backend, mode, labels and version or
 * image succeeds without touching the runtime.
 */
export function laneMatchesSpec(observed: LaneObservation, spec: LaneSpec): boolean {
  return (
    observed.laneId === spec.laneId &&
    observed.scope === spec.scope &&
    observed.pool === spec.pool &&
    observed.backend === spec.backend &&
    observed.mode === spec.mode &&
    observed.runnerVersion === spec.runnerVersion &&
    observed.image === spec.image &&
    observed.labels.length === spec.labels.length &&
    observed.labels.every((l, i) => l === spec.labels[i])
  );
}

/** Actions allowed on a held lane: the hold itself can be updated or released. */
export function allowedWhileHeld(kind: ActionKind): boolean {
  return kind === "hold" || kind === "release";
}
