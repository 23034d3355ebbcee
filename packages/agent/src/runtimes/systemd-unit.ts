/**
 * The unit file of a systemd lane: rendering (pure) and the minimal parsing needed to read ownership keys back.
 * systemd ignores keys starting with `X-`, so the ownership marker lives in the unit file itself and goes
 * wherever the file goes.
 */
import { RejectError, RejectReason } from "@lanekeeper/shared";
import { UNIT_STOP_TIMEOUT_S } from "../limits.js";

/** Unit keys carrying the ownership marker. */
export const UNIT_LANE_KEY = "X-Lanekeeper-Lane";
/** See {@link UNIT_LANE_KEY}. */
export const UNIT_HOST_KEY = "X-Lanekeeper-Host";
/** See {@link UNIT_LANE_KEY}. */
export const UNIT_MARKER_KEY = "X-Lanekeeper-Marker";

/**
 * Hardening applied to every lane unit. Chosen to work for a CI runner (which must write its work directory,
 * run compilers and talk to the network) and verified to start under systemd 252. `NoNewPrivileges` means jobs
 * cannot use sudo or setuid helpers; pools that need them do not fit this backend's defaults.
 * `RestrictNamespaces=no` is spelled out because jobs that run rootless containers need user and mount
 * namespaces. test/harness/test/launchers-systemd-hardening.test.ts runs node under exactly this list.
 */
export const LANE_UNIT_HARDENING: readonly string[] = Object.freeze([
  "NoNewPrivileges=yes",
  "PrivateTmp=yes",
  "ProtectSystem=full",
  "ProtectKernelTunables=yes",
  "ProtectKernelModules=yes",
  "ProtectKernelLogs=yes",
  "ProtectControlGroups=yes",
  "ProtectClock=yes",
  "ProtectHostname=yes",
  "RestrictRealtime=yes",
  "RestrictSUIDSGID=yes",
  "LockPersonality=yes",
  "RestrictNamespaces=no",
  "UMask=0027",
]);

/** Everything that goes into a lane's unit file. All strings are validated before they get here. */
export interface LaneUnitParams {
  readonly laneId: string;
  readonly hostId: string;
  readonly marker: string;
  readonly description: string;
  readonly user: string;
  /** The lane's own copy of the runner distribution (WorkingDirectory, and `run.sh` inside it). */
  readonly runnerDir: string;
  /** `EnvironmentFile=` (mode 0600): the only place a secret (a JIT config) may be given to the runner. */
  readonly envFile: string;
  /** The runner's console is appended here so the agent can classify why it stopped. */
  readonly logFile: string;
  /** Set `RUNNER_ALLOW_RUNASROOT=1` (only when the lane user is root, e.g. in tests). */
  readonly allowRoot: boolean;
  readonly cpuMillis: number;
  readonly memoryBytes: number;
  /** Extra, fixed hardening lines; defaults to {@link LANE_UNIT_HARDENING}. */
  readonly hardening?: readonly string[];
}

const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;
const SAFE_TEXT = /^[A-Za-z0-9 ._:/()@+-]*$/;

function assertSafe(what: string, v: string, re: RegExp): void {
  if (!re.test(v)) throw new RejectError(RejectReason.INVALID_NAME, `${what} ${JSON.stringify(v)} cannot be written into a unit file`);
}

/** Render the unit file text. Throws `RejectError(INVALID_NAME)` for anything that could break its syntax. */
export function renderLaneUnit(p: LaneUnitParams): string {
  assertSafe("runner directory", p.runnerDir, SAFE_PATH);
  assertSafe("environment file", p.envFile, SAFE_PATH);
  assertSafe("log file", p.logFile, SAFE_PATH);
  assertSafe("description", p.description, SAFE_TEXT);
  assertSafe("user", p.user, /^[a-z_][a-z0-9_-]{0,31}$/);
  assertSafe("marker", p.marker, /^[A-Za-z0-9_-]+$/);
  const lines = [
    "# Written by lanekeeper-agent. Do not edit: the agent verifies the X-Lanekeeper-* keys before every action",
    "# and refuses to touch a unit whose marker does not verify.",
    "[Unit]",
    `Description=${p.description}`,
    "After=network-online.target",
    "Wants=network-online.target",
    `${UNIT_LANE_KEY}=${p.laneId}`,
    `${UNIT_HOST_KEY}=${p.hostId}`,
    `${UNIT_MARKER_KEY}=${p.marker}`,
    "",
    "[Service]",
    "Type=simple",
    `User=${p.user}`,
    `WorkingDirectory=${p.runnerDir}`,
    `EnvironmentFile=${p.envFile}`,
    ...(p.allowRoot ? ["Environment=RUNNER_ALLOW_RUNASROOT=1"] : []),
    // run.sh forwards SIGTERM to the listener (as SIGINT) and waits: the listener deletes its session, so GitHub
    // shows the runner offline at once instead of keeping a ghost session that makes the next start conflict.
    "Environment=RUNNER_MANUALLY_TRAP_SIG=1",
    `ExecStart=${p.runnerDir}/run.sh`,
    `StandardOutput=append:${p.logFile}`,
    "StandardError=inherit",
    // The agent restarts with backoff and a cap; systemd must not restart behind its back.
    "Restart=no",
    // SIGTERM to every process: the listener cancels its job and exits within its own 30 s window.
    "KillMode=mixed",
    "KillSignal=SIGTERM",
    `TimeoutStopSec=${UNIT_STOP_TIMEOUT_S}`,
    ...(p.cpuMillis > 0 ? [`CPUQuota=${Math.max(1, Math.round(p.cpuMillis / 10))}%`] : []),
    ...(p.memoryBytes > 0 ? [`MemoryMax=${p.memoryBytes}`] : []),
    ...(p.hardening ?? LANE_UNIT_HARDENING),
    "",
  ];
  return lines.join("\n");
}

/** The keys of a unit file, `section.key` → values in order (repeated keys accumulate). */
export type ParsedUnit = ReadonlyMap<string, readonly string[]>;

/**
 * Parse unit file text into `Section.Key` → values. Only what ownership checks need: comments, blank lines and
 * line continuations are handled; anything else that is not `key=value` is ignored, as systemd does.
 */
export function parseUnitFile(text: string): ParsedUnit {
  const out = new Map<string, string[]>();
  let section = "";
  const lines = text.replace(/\\\r?\n/g, " ").split(/\r?\n/);
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) {
      section = sec[1] ?? "";
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = `${section}.${line.slice(0, eq).trim()}`;
    const list = out.get(key) ?? [];
    list.push(line.slice(eq + 1).trim());
    out.set(key, list);
  }
  return out;
}

/** The ownership keys of a parsed unit (each exactly once in `[Unit]`, or `undefined`). */
export function unitMarkerKeys(unit: ParsedUnit): { lane?: string; host?: string; marker?: string; duplicated: boolean } {
  const get = (k: string): readonly string[] => unit.get(`Unit.${k}`) ?? [];
  const lane = get(UNIT_LANE_KEY);
  const host = get(UNIT_HOST_KEY);
  const marker = get(UNIT_MARKER_KEY);
  const duplicated = lane.length > 1 || host.length > 1 || marker.length > 1;
  return {
    ...(lane.length === 1 ? { lane: lane[0] } : {}),
    ...(host.length === 1 ? { host: host[0] } : {}),
    ...(marker.length === 1 ? { marker: marker[0] } : {}),
    duplicated,
  };
}
