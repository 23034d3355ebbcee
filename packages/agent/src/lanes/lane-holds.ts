/**
 * Local operator holds: `lanekeeper-agent hold <laneId>` writes `<stateDir>/holds/<laneId>.json`, `release`
 * deletes it. The running agent reads the file right before every mutation of that lane and on every health tick,
 * so a hold takes effect at once without any mutating RPC on the status socket. Only root (or whoever can write
 * the 0700 state directory) can place one.
 */
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { validateLaneId } from "@lanekeeper/shared";
import { readSmallFile, unlinkDurable, writeFileAtomic } from "../atomic-file.js";
import { MAX_HOLD_REASON_CHARS, MAX_STATE_FILE_BYTES } from "../limits.js";

/** One hold. */
export interface LaneHold {
  readonly laneId: string;
  readonly reason: string;
  readonly atMs: number;
  /** Who placed it (login name of the CLI user, or `intent` for a coordinator HoldLane). */
  readonly by: string;
}

function holdsDir(stateDir: string): string {
  return join(stateDir, "holds");
}

function holdPath(stateDir: string, laneId: string): string {
  return join(holdsDir(stateDir), `${validateLaneId(laneId)}.json`);
}

/** Clean a reason for storage: single line, printable, capped. */
export function cleanHoldReason(reason: string): string {
  // eslint-disable-next-line no-control-regex
  return reason.replace(/[\u0000-\u001f\u007f]+/g, " ").trim().slice(0, MAX_HOLD_REASON_CHARS);
}

/** Place (or replace) a hold. */
export async function writeHold(stateDir: string, hold: LaneHold): Promise<void> {
  await mkdir(holdsDir(stateDir), { recursive: true, mode: 0o700 });
  await writeFileAtomic(holdPath(stateDir, hold.laneId), `${JSON.stringify({ ...hold, reason: cleanHoldReason(hold.reason) })}\n`, 0o600);
}

/** Remove a hold; `false` when there was none. */
export async function removeHold(stateDir: string, laneId: string): Promise<boolean> {
  const had = (await readHold(stateDir, laneId)) !== undefined;
  await unlinkDurable(holdPath(stateDir, laneId));
  return had;
}

/**
 * The hold of a lane, or `undefined`. An unreadable hold file counts as a hold (fail closed): a broken file must
 * not silently release a lane.
 */
export async function readHold(stateDir: string, laneId: string): Promise<LaneHold | undefined> {
  let buf: Buffer | undefined;
  try {
    buf = await readSmallFile(holdPath(stateDir, laneId), MAX_STATE_FILE_BYTES);
  } catch {
    return { laneId, reason: "hold file unreadable", atMs: 0, by: "unknown" };
  }
  if (!buf) return undefined;
  try {
    const v = JSON.parse(buf.toString("utf8")) as Partial<LaneHold>;
    return {
      laneId,
      reason: typeof v.reason === "string" ? v.reason : "",
      atMs: typeof v.atMs === "number" ? v.atMs : 0,
      by: typeof v.by === "string" ? v.by : "unknown",
    };
  } catch {
    return { laneId, reason: "hold file unreadable", atMs: 0, by: "unknown" };
  }
}

/** Every hold, by lane id. */
export async function listHolds(stateDir: string): Promise<Map<string, LaneHold>> {
  const out = new Map<string, LaneHold>();
  const entries = await readdir(holdsDir(stateDir)).catch(() => [] as string[]);
  for (const e of entries) {
    const m = /^([a-z0-9][a-z0-9-]{0,62})\.json$/.exec(e);
    if (!m?.[1]) continue;
    const h = await readHold(stateDir, m[1]);
    if (h) out.set(m[1], h);
  }
  return out;
}
