import { LanekeeperError } from "@lanekeeper/shared";
import type { JetStreamManager, NatsConnection } from "nats";
import { NatsUnavailableError, natsOptionsFromPolicy } from "../context/coordinator-context.js";
import { NatsOpening } from "../context/nats-opening.js";
import { CLUSTER_COMMAND_NATS_WAIT_MS } from "../limits.js";
import { COORDINATOR_STREAMS, JetStreamReplicasError, replicaMismatches, setJetStreamReplicas } from "../context/jetstream-replicas.js";
import type { CliIo } from "./cli-io.js";
import { ExitCode } from "./exit-codes.js";
import { policyPath, readPolicyFile } from "./policy-file.js";
import { renderTable } from "./render-table.js";

/** Options of `lanekeeper cluster replicas`. */
export interface ClusterReplicasOptions {
  readonly policy?: string;
  readonly json?: boolean;
  /** Move every existing coordinator stream to the policy's `coordinator.jetstreamReplicas`. */
  readonly apply?: boolean;
}

/** One row of `cluster replicas`. */
interface StreamRow {
  readonly stream: string;
  readonly exists: boolean;
  readonly replicas?: number;
  readonly leader?: string;
  /** Peers that are current (caught up) and online, leader included. */
  readonly current?: number;
}

/**
 * `lanekeeper cluster replicas [--apply]`: the replica count, leader and caught-up peers of each of the
 * coordinator's JetStream streams (KV buckets and the audit stream) against `coordinator.jetstreamReplicas`.
 * Exits 3 (`JETSTREAM_REPLICAS_MISMATCH`) when one differs; `--apply` updates them (the servers copy the data in
 * the background) and exits 0. Connects to NATS only: it must work exactly when the coordinator refuses to start.
 */
export async function runClusterReplicas(opts: ClusterReplicasOptions, io: CliIo): Promise<ExitCode> {
  const { policy } = await readPolicyFile(policyPath(opts.policy, io.env, io.cwd));
  const wanted = policy.coordinator.jetstreamReplicas;
  // Read while a node is down or the cluster elects leaders: each step is retried within one bound.
  const opening = new NatsOpening({ servers: policy.coordinator.natsServers, waitMs: CLUSTER_COMMAND_NATS_WAIT_MS });
  let nc: NatsConnection;
  try {
    nc = await opening.connect({ ...(await natsOptionsFromPolicy(policy, io.env)), maxReconnectAttempts: 0 });
  } catch (err) {
    if (err instanceof LanekeeperError) throw err;
    throw new NatsUnavailableError(`cannot connect to NATS at ${policy.coordinator.natsServers.join(", ")}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const jsm = await opening.run("open JetStream", () => nc.jetstreamManager());
    const changed = opts.apply === true ? await opening.run("update the streams' replica counts", () => setJetStreamReplicas(jsm, wanted)) : [];
    const rows = await opening.run("read the streams", () => streamRows(jsm));
    const mismatches = opts.apply === true ? [] : await opening.run("read the streams' replica counts", () => replicaMismatches(jsm, wanted));
    if (opts.json === true) {
      io.out(`${JSON.stringify({ wanted, streams: rows, changed, ok: mismatches.length === 0 }, null, 2)}\n`);
    } else {
      io.out(
        renderTable(
          ["STREAM", "REPLICAS", "LEADER", "CURRENT"],
          rows.map((r) => (r.exists ? [r.stream, String(r.replicas), r.leader ?? "-", String(r.current)] : [r.stream, "(not created yet)", "-", "-"])),
        ),
      );
      for (const c of changed) io.out(`${c.stream}: ${c.has} -> ${c.wanted} replicas\n`);
      if (mismatches.length === 0) io.out(`every existing stream has ${wanted} replica(s), as coordinator.jetstreamReplicas asks\n`);
    }
    if (mismatches.length > 0) throw new JetStreamReplicasError(mismatches);
    return ExitCode.OK;
  } catch (err) {
    if (err instanceof LanekeeperError) throw err;
    throw new NatsUnavailableError(`JetStream at ${policy.coordinator.natsServers.join(", ")} did not answer: ${(err as Error).message}`, { cause: err });
  } finally {
    await nc.close();
  }
}

/** One row per coordinator stream: its replicas, leader and caught-up peers, or that it does not exist yet. */
async function streamRows(jsm: JetStreamManager): Promise<StreamRow[]> {
  const rows: StreamRow[] = [];
  for (const stream of COORDINATOR_STREAMS) {
    try {
      const info = await jsm.streams.info(stream);
      const peers = info.cluster?.replicas ?? [];
      const current = (info.cluster?.leader === undefined ? 0 : 1) + peers.filter((p) => p.current && !p.offline).length;
      rows.push({ stream, exists: true, replicas: info.config.num_replicas, ...(info.cluster?.leader === undefined ? {} : { leader: info.cluster.leader }), current });
    } catch (err) {
      if (!/stream not found/i.test((err as Error).message)) throw err;
      rows.push({ stream, exists: false });
    }
  }
  return rows;
}
