import { LanekeeperError } from "@lanekeeper/shared";
import type { JetStreamManager } from "nats";
import { AUDIT_STREAM } from "../audit/limits.js";
import { AUDIT_ANCHOR_BUCKET } from "../dispatch/audit-anchor-store.js";
import { INVENTORY_BUCKET, SEQUENCES_BUCKET } from "../dispatch/limits.js";
import type { CoordinatorErrorCode } from "../error-codes.js";
import { LANES_BUCKET } from "../lane-store-kv/kv-lane-store.js";
import { LEADER_BUCKET } from "../serve/limits.js";
import { OPERATIONS_BUCKET } from "../apply/limits.js";
import { DELIVERIES_BUCKET, JOBS_BUCKET } from "../demand/limits.js";
import { CREATE_BUDGET_BUCKET } from "../limits.js";

/**
 * Every JetStream stream the coordinator creates: its KV buckets (a bucket `b` is the stream `KV_b`) and the audit
 * stream. All of them get the policy's `coordinator.jetstreamReplicas`. A new bucket must be listed here, or the
 * start-time check and `lanekeeper cluster replicas` miss it (test/integration/nats-cluster.test.ts lists every
 * stream a coordinator leaves on the server and compares).
 */
export const COORDINATOR_STREAMS: readonly string[] = Object.freeze([
  `KV_${LANES_BUCKET}`,
  `KV_${SEQUENCES_BUCKET}`,
  `KV_${LEADER_BUCKET}`,
  `KV_${INVENTORY_BUCKET}`,
  `KV_${AUDIT_ANCHOR_BUCKET}`,
  `KV_${OPERATIONS_BUCKET}`,
  `KV_${JOBS_BUCKET}`,
  `KV_${DELIVERIES_BUCKET}`,
  `KV_${CREATE_BUDGET_BUCKET}`,
  AUDIT_STREAM,
]);

/** One existing stream whose replica count differs from the policy's. */
export interface ReplicaMismatch {
  readonly stream: string;
  readonly has: number;
  readonly wanted: number;
}

/**
 * Existing buckets or the audit stream have another replica count than `coordinator.jetstreamReplicas`. The
 * coordinator never changes them itself: going from 3 to 1 replica silently would drop the fault tolerance the
 * operator set up, and going up moves data between servers, which an operator should start knowingly.
 */
export class JetStreamReplicasError extends LanekeeperError<CoordinatorErrorCode> {
  readonly mismatches: readonly ReplicaMismatch[];
  constructor(mismatches: readonly ReplicaMismatch[]) {
    const first = mismatches[0];
    const list = mismatches.map((m) => `${m.stream} has ${m.has}`).join(", ");
    const wanted = first?.wanted ?? 1;
    const has = first?.has ?? 1;
    super(
      "JETSTREAM_REPLICAS_MISMATCH",
      `the policy asks for ${wanted} JetStream replica(s) (coordinator.jetstreamReplicas) but ${list}; ` +
        `set coordinator.jetstreamReplicas: ${has} to keep them as they are, or change the streams' replica count ` +
        `with \`lanekeeper cluster replicas --apply\` (docs/cluster.md)`,
      { details: { mismatches: mismatches.map((m) => ({ ...m })) } },
    );
    this.mismatches = mismatches;
  }
}

/** Whether JetStream answered "stream not found". */
function isStreamNotFound(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e.api_error?.err_code === 10059 || /stream not found/i.test(e.message ?? "");
}

/** The replica count of each existing coordinator stream that differs from `wanted` (missing streams are fine). */
export async function replicaMismatches(jsm: JetStreamManager, wanted: number, streams: readonly string[] = COORDINATOR_STREAMS): Promise<ReplicaMismatch[]> {
  const out: ReplicaMismatch[] = [];
  for (const stream of streams) {
    let has: number;
    try {
      has = (await jsm.streams.info(stream)).config.num_replicas;
    } catch (err) {
      if (isStreamNotFound(err)) continue;
      throw err;
    }
    if (has !== wanted) out.push({ stream, has, wanted });
  }
  return out;
}

/**
 * The start-time check: every coordinator stream that exists already has the policy's replica count. Run before
 * any bucket is opened, so a coordinator never works on buckets with less fault tolerance than the policy says.
 */
export async function checkJetStreamReplicas(jsm: JetStreamManager, wanted: number): Promise<void> {
  const bad = await replicaMismatches(jsm, wanted);
  if (bad.length > 0) throw new JetStreamReplicasError(bad);
}

/**
 * Move every existing coordinator stream to `wanted` replicas (a JetStream stream update; the servers copy the data
 * in the background). Returns what was changed. Used by `lanekeeper cluster replicas --apply`.
 */
export async function setJetStreamReplicas(jsm: JetStreamManager, wanted: number): Promise<ReplicaMismatch[]> {
  const bad = await replicaMismatches(jsm, wanted);
  for (const m of bad) {
    const info = await jsm.streams.info(m.stream);
    await jsm.streams.update(m.stream, { ...info.config, num_replicas: wanted });
  }
  return bad;
}
