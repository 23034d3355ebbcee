import { LanekeeperError, validateHostId, validateLaneId, validatePoolName, validateScope } from "@lanekeeper/shared";
import type { LaneRecord, LaneRecordState } from "../observe/lane-record.js";
import { CliError } from "./cli-errors.js";

const STATES: readonly LaneRecordState[] = ["creating", "active", "draining", "removing", "needs-attention", "orphaned"];

/**
 * Parse a JSON array of lane records (`lanekeeper plan --records <file>`): planning offline from a copy of
 * the lane store. Identifiers are validated like everywhere else.
 */
export function parseLaneRecordsJson(text: string, path: string): LaneRecord[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CliError("RECORDS_INVALID", `${path} is not JSON: expected an array of lane records`);
  }
  if (!Array.isArray(raw)) throw new CliError("RECORDS_INVALID", `${path}: expected an array of lane records`);
  const seen = new Set<string>();
  return raw.map((r: unknown, i): LaneRecord => {
    const at = `${path}[${i}]`;
    if (typeof r !== "object" || r === null) throw new CliError("RECORDS_INVALID", `${at}: not an object`);
    const o = r as Record<string, unknown>;
    try {
      validateLaneId(o.laneId);
      validateScope(o.scope);
      validatePoolName(o.pool);
      validateHostId(o.hostId);
    } catch (err) {
      throw new CliError("RECORDS_INVALID", `${at}: ${err instanceof LanekeeperError ? err.message : "invalid"}`);
    }
    if (!STATES.includes(o.state as LaneRecordState)) throw new CliError("RECORDS_INVALID", `${at}.state: one of ${STATES.join(", ")}`);
    if (typeof o.createdAtMs !== "number" || typeof o.updatedAtMs !== "number") {
      throw new CliError("RECORDS_INVALID", `${at}: createdAtMs and updatedAtMs must be numbers`);
    }
    if (o.runnerId !== undefined && (typeof o.runnerId !== "number" || !Number.isSafeInteger(o.runnerId))) {
      throw new CliError("RECORDS_INVALID", `${at}.runnerId: an integer`);
    }
    if (seen.has(o.laneId as string)) throw new CliError("RECORDS_INVALID", `${at}: lane ${String(o.laneId)} appears twice`);
    seen.add(o.laneId as string);
    // The remaining optional fields (orphan, attention, drainReason, operationId) are carried as given.
    return o as unknown as LaneRecord;
  });
}
