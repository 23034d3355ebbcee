/**
 * Validation of a `LaneSpec` before anything touches the host, and its conversion to the signed
 * {@link LaneRecord}. Every string that later reaches a path, a unit file, a container label or a `config.sh`
 * argument passes a strict validator here; the `lk-` labels must be exactly this lane's identity on this host, so
 * a spec can never claim another agent's or another lane's ownership labels.
 */
import {
  Backend,
  DRAINING_LABEL,
  identityLabels,
  isReservedLabel,
  LaneMode,
  MAX_URL_CHARS,
  parseScope,
  RejectError,
  RejectReason,
  type LaneSpec,
  validateImageRef,
  validateLabels,
  validateLaneId,
  validatePoolName,
  validateRunnerGroup,
  validateRunnerVersion,
} from "@lanekeeper/shared";
import { backendName, LANE_RECORD_FORMAT, modeName, type LaneRecord } from "./lane-marker.js";

/** Smallest memory limit accepted (engines refuse less than 6 MiB; a runner needs far more). */
export const MIN_MEMORY_BYTES = 64 * 1024 * 1024;
/** Largest CPU limit accepted, in thousandths of a core. */
export const MAX_CPU_MILLIS = 1024 * 1000;

function bad(reason: RejectReason, message: string): RejectError {
  return new RejectError(reason, message);
}

/**
 * Check that `url` is exactly the web URL of `scope` on some http(s) origin: `<origin>/owner/repo` or
 * `<origin>/org`, compared as text, nothing more. Which origins are allowed is the intake's decision
 * (`checkRunnerUrl` against the agent's pinned `github.origins`); this is the lane layer's own guard, so a spec
 * reaching it by another path still cannot carry a path, credentials, a query or a traversal.
 */
export function validateGithubUrl(url: string, scope: string): string {
  if (url.length === 0 || url.length > MAX_URL_CHARS) throw bad(RejectReason.INVALID_NAME, "githubUrl must be the scope's web URL");
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad(RejectReason.INVALID_NAME, `githubUrl ${JSON.stringify(url.slice(0, 80))} is not a URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw bad(RejectReason.INVALID_NAME, "githubUrl must be http(s)");
  const s = parseScope(scope);
  const expected = s.kind === "repo" ? `/${s.owner}/${s.repo}` : `/${s.org}`;
  // Exact text: a parsed URL forgives `..` segments, percent-encoding and userinfo, which must not pass.
  if (url !== `${u.origin}${expected}`) {
    throw bad(RejectReason.INVALID_NAME, `githubUrl must be exactly the web URL of scope ${scope} (${u.origin}${expected})`);
  }
  return url;
}

/**
 * Validate the labels: a valid set whose reserved `lk-` labels are exactly this lane's identity labels (all of
 * them) plus, optionally, `lk-draining`.
 */
export function validateLaneLabels(labels: readonly string[], id: { laneId: string; hostId: string; pool: string }): string[] {
  const valid = validateLabels(labels, { allowReserved: true });
  const identity = identityLabels(id);
  const allowedReserved = new Set([...identity, DRAINING_LABEL]);
  for (const l of valid) {
    if (isReservedLabel(l) && !allowedReserved.has(l)) {
      throw bad(
        RejectReason.INVALID_LABEL,
        `label ${JSON.stringify(l)} uses the reserved lk- prefix but is not an identity label of lane ${id.laneId} on host ${id.hostId}`,
      );
    }
  }
  for (const l of identity) {
    if (!valid.includes(l)) throw bad(RejectReason.INVALID_LABEL, `the lane must register with its identity label ${l}`);
  }
  return valid;
}

/** Validate a spec for this host and turn it into the record `lane.json` will bind. */
export function laneRecordFromSpec(spec: LaneSpec, hostId: string, runtimeName: (laneId: string) => string, nowMs: number): LaneRecord {
  const laneId = validateLaneId(spec.laneId);
  const pool = validatePoolName(spec.pool);
  const scope = parseScope(spec.scope);
  const backend = backendName(spec.backend);
  const mode = modeName(spec.mode);
  const labels = validateLaneLabels(spec.labels, { laneId, hostId, pool });
  let runnerGroup = "";
  if (spec.runnerGroup !== "") {
    if (scope.kind !== "org") throw bad(RejectReason.INVALID_NAME, "a runner group is only valid for organization scopes");
    runnerGroup = validateRunnerGroup(spec.runnerGroup);
  }
  const githubUrl = validateGithubUrl(spec.githubUrl, spec.scope);
  let runnerVersion = "";
  let image = "";
  if (spec.backend === Backend.BACKEND_SYSTEMD) {
    runnerVersion = validateRunnerVersion(spec.runnerVersion);
    if (spec.image !== "") throw bad(RejectReason.PAYLOAD_MALFORMED, "a systemd lane takes a runner version, not an image");
  } else {
    image = validateImageRef(spec.image);
  }
  const cpuMillis = spec.limits?.cpuMillis ?? 0;
  const memoryBytes = spec.limits?.memoryBytes ?? 0;
  if (!Number.isSafeInteger(cpuMillis) || cpuMillis < 0 || cpuMillis > MAX_CPU_MILLIS) {
    throw bad(RejectReason.PAYLOAD_MALFORMED, `cpu limit must be 0..${MAX_CPU_MILLIS} millicores`);
  }
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes < 0 || (memoryBytes > 0 && memoryBytes < MIN_MEMORY_BYTES)) {
    throw bad(RejectReason.PAYLOAD_MALFORMED, `memory limit must be 0 (none) or at least ${MIN_MEMORY_BYTES} bytes`);
  }
  if (spec.mode !== LaneMode.LANE_MODE_PERSISTENT && spec.mode !== LaneMode.LANE_MODE_EPHEMERAL) {
    throw bad(RejectReason.PAYLOAD_MALFORMED, "mode must be persistent or ephemeral");
  }
  return {
    format: LANE_RECORD_FORMAT,
    laneId,
    hostId,
    backend,
    runtimeName: runtimeName(laneId),
    mode,
    scope: spec.scope,
    pool,
    labels,
    runnerGroup,
    githubUrl,
    runnerVersion,
    image,
    cpuMillis,
    memoryBytes,
    createdAtMs: nowMs,
  };
}

/** Check a secret handed to the agent: bounded, a single token of the characters runner secrets use. */
export function validateSecret(secret: Buffer | undefined, what: string, maxBytes: number): Buffer {
  if (!secret || secret.length === 0) throw bad(RejectReason.PAYLOAD_MALFORMED, `${what} is missing`);
  if (secret.length > maxBytes) throw bad(RejectReason.PAYLOAD_MALFORMED, `${what} is longer than ${maxBytes} bytes`);
  for (const b of secret) {
    const ok =
      (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2b || b === 0x2f || b === 0x3d || b === 0x2e || b === 0x5f || b === 0x2d || b === 0x3a;
    if (!ok) throw bad(RejectReason.PAYLOAD_MALFORMED, `${what} has characters a runner token or JIT config never contains`);
  }
  return secret;
}
