/**
 * The host-side ownership marker (DESIGN section 6, marker 1): `lane.json` in the lane directory, signed with
 * the agent's Ed25519 identity key and bound to laneId, hostId, backend and unit/container name, plus a short
 * signature carried by the unit (`X-Lanekeeper-Marker=`) or container (`dev.lanekeeper.marker` label). Anyone with
 * write access to the unit directory or the engine can copy keys and labels; nobody without the identity key can
 * produce a marker that verifies for another name, lane or host.
 *
 * Signatures cover exact bytes with DSSE-style pre-authentication encoding and their own payload types, so a lane
 * marker can never be confused with an intent, result or inventory signature.
 */
import { createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { Backend, type BackendName, LaneMode, RejectError, RejectReason, type LaneSpec, type SigningKey } from "@lanekeeper/shared";

/** Payload type of `lane.json`. */
export const LANE_RECORD_PAYLOAD_TYPE = "lanekeeper.lane.v1";
/** Payload type of the unit/container marker signature. */
export const RUNTIME_MARKER_PAYLOAD_TYPE = "lanekeeper.runtime-marker.v1";
/** Version of the `lane.json` payload layout. */
export const LANE_RECORD_FORMAT = 1;

/** The backend names used in files, labels and the CLI (the config's `BackendName`). */
export type { BackendName };
/** The mode names used in files and the CLI. */
export type ModeName = "persistent" | "ephemeral";

/** What `lane.json` binds: who the lane is and everything it was created from (no secret). */
export interface LaneRecord {
  readonly format: typeof LANE_RECORD_FORMAT;
  readonly laneId: string;
  readonly hostId: string;
  readonly backend: BackendName;
  /** Unit name (`lanekeeper-lane-<id>.service`) or container name (`lanekeeper-lane-<id>`). */
  readonly runtimeName: string;
  readonly mode: ModeName;
  readonly scope: string;
  readonly pool: string;
  readonly labels: readonly string[];
  readonly runnerGroup: string;
  readonly githubUrl: string;
  readonly runnerVersion: string;
  readonly image: string;
  readonly cpuMillis: number;
  readonly memoryBytes: number;
  readonly createdAtMs: number;
}

/** DSSE pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`. */
function pae(payloadType: string, body: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, "utf8"),
    type,
    Buffer.from(` ${body.length} `, "utf8"),
    body,
  ]);
}

/** Map the protobuf backend enum to its file name. */
export function backendName(b: Backend): BackendName {
  if (b === Backend.BACKEND_SYSTEMD) return "systemd";
  if (b === Backend.BACKEND_CONTAINER) return "container";
  throw new RejectError(RejectReason.NOT_ALLOWED_BACKEND, "the lane spec names no backend (systemd or container)");
}

/** Map a backend name back to the protobuf enum. */
export function backendEnum(b: BackendName): Backend {
  return b === "systemd" ? Backend.BACKEND_SYSTEMD : Backend.BACKEND_CONTAINER;
}

/** Map the protobuf mode enum to its file name. */
export function modeName(m: LaneMode): ModeName {
  if (m === LaneMode.LANE_MODE_PERSISTENT) return "persistent";
  if (m === LaneMode.LANE_MODE_EPHEMERAL) return "ephemeral";
  throw new RejectError(RejectReason.PAYLOAD_MALFORMED, "the lane spec names no mode (persistent or ephemeral)");
}

/** Map a mode name back to the protobuf enum. */
export function modeEnum(m: ModeName): LaneMode {
  return m === "persistent" ? LaneMode.LANE_MODE_PERSISTENT : LaneMode.LANE_MODE_EPHEMERAL;
}

/** The spec a record was created from, as the protobuf message. */
export function specOfRecord(r: LaneRecord): LaneSpec {
  return {
    laneId: r.laneId,
    scope: r.scope,
    pool: r.pool,
    backend: backendEnum(r.backend),
    mode: modeEnum(r.mode),
    labels: [...r.labels],
    runnerGroup: r.runnerGroup,
    githubUrl: r.githubUrl,
    runnerVersion: r.runnerVersion,
    image: r.image,
    limits: { cpuMillis: r.cpuMillis, memoryBytes: r.memoryBytes },
    runnerDownload: undefined,
  };
}

/** Signs and verifies markers with the agent's identity key. */
export class MarkerSigner {
  private readonly publicKey: KeyObject;

  /**
   * @param hostId - this agent's host id; every marker is bound to it.
   * @param key - the agent's identity key.
   */
  constructor(
    readonly hostId: string,
    private readonly key: SigningKey,
  ) {
    // Derived from the private key rather than trusted from a stored public key: the private key is the identity.
    this.publicKey = createPublicKey(key.privateKey);
  }

  /** The identity key id the markers are signed with. */
  get keyId(): string {
    return this.key.keyId;
  }

  /** The short marker carried by a unit (`X-Lanekeeper-Marker=`) or a container label: base64url signature. */
  runtimeMarker(laneId: string, backend: BackendName, runtimeName: string): string {
    return sign(null, pae(RUNTIME_MARKER_PAYLOAD_TYPE, markerBody(this.hostId, laneId, backend, runtimeName)), this.key.privateKey).toString(
      "base64url",
    );
  }

  /** Whether `marker` is this agent's marker for exactly this lane, backend and name. */
  verifyRuntimeMarker(marker: string, laneId: string, backend: BackendName, runtimeName: string): boolean {
    if (!/^[A-Za-z0-9_-]{86}$/.test(marker)) return false;
    const sig = Buffer.from(marker, "base64url");
    return verify(null, pae(RUNTIME_MARKER_PAYLOAD_TYPE, markerBody(this.hostId, laneId, backend, runtimeName)), this.publicKey, sig);
  }

  /** The signed `lane.json` text for `record`. */
  signRecord(record: LaneRecord): string {
    const payload = JSON.stringify(record);
    const signature = sign(null, pae(LANE_RECORD_PAYLOAD_TYPE, Buffer.from(payload, "utf8")), this.key.privateKey);
    return `${JSON.stringify({ payloadType: LANE_RECORD_PAYLOAD_TYPE, keyId: this.key.keyId, payload, signature: signature.toString("base64") }, null, 2)}\n`;
  }

  /**
   * Verify `lane.json` text (signature first, over the exact payload bytes, then parse) and check that it binds
   * `expect`. Throws `RejectError` with `BAD_MARKER` (unverifiable, other lane, other name or backend) or
   * `FOREIGN_HOST` (a valid-looking record of another host).
   */
  verifyRecord(text: string, expect: { laneId: string; backend?: BackendName; runtimeName?: string }): LaneRecord {
    const bad = (why: string): RejectError =>
      new RejectError(RejectReason.BAD_MARKER, `lane.json of lane ${expect.laneId} ${why}`, { details: { laneId: expect.laneId } });
    let outer: unknown;
    try {
      outer = JSON.parse(text);
    } catch {
      throw bad("is not JSON");
    }
    if (!isPlain(outer) || !sameKeys(outer, ["payloadType", "keyId", "payload", "signature"])) throw bad("has an unexpected layout");
    const { payloadType, payload, signature } = outer;
    if (payloadType !== LANE_RECORD_PAYLOAD_TYPE || typeof payload !== "string" || typeof signature !== "string") {
      throw bad("has an unexpected payload type");
    }
    const sig = Buffer.from(signature, "base64");
    if (sig.length !== 64 || !verify(null, pae(LANE_RECORD_PAYLOAD_TYPE, Buffer.from(payload, "utf8")), this.publicKey, sig)) {
      throw bad("is not signed by this agent's identity key");
    }
    let rec: unknown;
    try {
      rec = JSON.parse(payload);
    } catch {
      throw bad("has a payload that is not JSON");
    }
    if (!isLaneRecord(rec)) throw bad("has an invalid payload");
    if (rec.hostId !== this.hostId) {
      throw new RejectError(RejectReason.FOREIGN_HOST, `lane.json of lane ${expect.laneId} belongs to host ${rec.hostId}`, {
        details: { laneId: expect.laneId, markerHost: rec.hostId },
      });
    }
    if (rec.laneId !== expect.laneId) throw bad(`names lane ${rec.laneId}`);
    if (expect.backend !== undefined && rec.backend !== expect.backend) throw bad(`names backend ${rec.backend}`);
    if (expect.runtimeName !== undefined && rec.runtimeName !== expect.runtimeName) throw bad(`names ${rec.runtimeName}`);
    return rec;
  }
}

function markerBody(hostId: string, laneId: string, backend: BackendName, runtimeName: string): Buffer {
  return Buffer.from(`${hostId}\n${laneId}\n${backend}\n${runtimeName}`, "utf8");
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function sameKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  const have = Object.keys(o);
  return have.length === keys.length && keys.every((k) => Object.prototype.hasOwnProperty.call(o, k));
}

const RECORD_KEYS = [
  "format",
  "laneId",
  "hostId",
  "backend",
  "runtimeName",
  "mode",
  "scope",
  "pool",
  "labels",
  "runnerGroup",
  "githubUrl",
  "runnerVersion",
  "image",
  "cpuMillis",
  "memoryBytes",
  "createdAtMs",
] as const;

function isLaneRecord(v: unknown): v is LaneRecord {
  if (!isPlain(v) || !sameKeys(v, RECORD_KEYS)) return false;
  const str = (k: string): boolean => typeof v[k] === "string";
  const num = (k: string): boolean => typeof v[k] === "number" && Number.isSafeInteger(v[k]) && v[k] >= 0;
  return (
    v.format === LANE_RECORD_FORMAT &&
    ["laneId", "hostId", "runtimeName", "scope", "pool", "runnerGroup", "githubUrl", "runnerVersion", "image"].every(str) &&
    (v.backend === "systemd" || v.backend === "container") &&
    (v.mode === "persistent" || v.mode === "ephemeral") &&
    Array.isArray(v.labels) &&
    v.labels.every((l) => typeof l === "string") &&
    ["cpuMillis", "memoryBytes", "createdAtMs"].every(num)
  );
}
