import type { Logger, Policy } from "@lanekeeper/shared";
import type { JetStreamClient } from "nats";
import { KvDeliveryLedger } from "../demand/delivery-ledger.js";
import { resolveDemandOptions, webhookSecretFrom } from "../demand/demand-options.js";
import { demandScopes, laneScopes } from "../demand/demand-scopes.js";
import { DemandSync } from "../demand/demand-sync.js";
import type { JobTransition } from "../demand/job-store.js";
import { KvJobStore } from "../demand/kv-job-store.js";
import { RestDemandReconciler } from "../demand/rest-reconciler.js";
import { WebhookReceiver } from "../demand/webhook-receiver.js";
import type { GitHubClient } from "../github/github-client.js";
import { hasJobReads } from "../github/github-jobs.js";
import type { CoordinatorMetrics } from "../metrics/coordinator-metrics.js";
import type { DemandJob } from "../observe/demand.js";

/** What {@link startDemandService} needs from `serve`. */
export interface DemandServiceDeps {
  readonly policy: Policy;
  readonly js: JetStreamClient;
  readonly github: GitHubClient;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Ask the reconciler for a cycle now. */
  readonly poke: (reason: string) => void;
  readonly isLeader: () => boolean;
  readonly metrics?: CoordinatorMetrics;
  readonly log?: Logger;
}

/** The running demand sources of one `serve` process. */
export interface DemandService {
  readonly jobs: KvJobStore;
  /** The webhook endpoint's bound port, when one is configured. */
  readonly webhookPort?: number;
  readonly sync?: DemandSync;
  stop(): Promise<void>;
}

function transitionReason(job: DemandJob, before: DemandJob | undefined): string | undefined {
  if (before !== undefined && before.status === job.status) return undefined;
  return `job ${job.id} ${job.status}`;
}

/**
 * Start the demand sources of `lanekeeper serve`: the job store (JetStream KV, shared by every coordinator), the
 * webhook endpoint when `coordinator.webhook` is set (every process receives, leader or not), the REST
 * reconciliation while leader when a lane entry uses `scaling`, and a watch on the store so the leader starts a
 * cycle at once whichever process recorded a job's new state. Throws `WebhookConfigError` when the endpoint cannot
 * start (secret not in the environment, address in use).
 */
export async function startDemandService(d: DemandServiceDeps): Promise<DemandService> {
  const replicas = d.policy.coordinator.jetstreamReplicas;
  const jobs = await KvJobStore.open(d.js, { replicas });
  const opts = resolveDemandOptions(d.policy.coordinator);
  const stops: (() => Promise<unknown> | void)[] = [];
  const onTransition = (t: JobTransition): void => {
    if (t.after.startedAtMs !== undefined && t.before?.startedAtMs === undefined) d.metrics?.jobStarted(t.after);
    const why = transitionReason(t.after, t.before);
    if (why !== undefined) d.poke(why);
  };
  try {
    // Another process's writes (a follower's receiver) reach this one's reconciler through the store.
    const seen = new Map<number, DemandJob["status"]>();
    const unwatch = await jobs.watch((job) => {
      const was = seen.get(job.id);
      if (job.status === "completed") seen.delete(job.id);
      else seen.set(job.id, job.status);
      if (was !== job.status) d.poke(`job ${job.id} ${job.status} (store)`);
    });
    stops.push(unwatch);
    let webhookPort: number | undefined;
    const w = d.policy.coordinator.webhook;
    if (w !== undefined) {
      const receiver = new WebhookReceiver({
        secret: webhookSecretFrom(d.policy.coordinator, d.env),
        path: w.path,
        maxBodyBytes: w.maxBodyBytes,
        ledger: await KvDeliveryLedger.open(d.js, { replicas }),
        jobs,
        scopes: () => ({ demand: demandScopes(d.policy), lanes: laneScopes(d.policy) }),
        onTransition,
        onLaneEvent: (e) => {
          if (e.action === "completed") d.poke(`job completed in ${e.scope}`);
        },
        ...(d.metrics === undefined ? {} : { observer: d.metrics }),
        ...(d.log === undefined ? {} : { log: d.log.child({ component: "webhook" }) }),
      });
      const server = await receiver.listen(w.listen);
      stops.push(() => server.close());
      webhookPort = server.port;
      d.log?.info({ listen: w.listen, port: server.port, path: w.path }, "receiving GitHub webhooks");
    }
    let sync: DemandSync | undefined;
    if (demandScopes(d.policy).length > 0 && hasJobReads(d.github)) {
      const rest = new RestDemandReconciler({
        github: d.github,
        jobs,
        orgReposIntervalMs: opts.orgReposIntervalMs,
        onTransition,
        ...(d.metrics === undefined ? {} : { observer: d.metrics }),
        ...(d.log === undefined ? {} : { log: d.log.child({ component: "demand" }) }),
      });
      sync = new DemandSync({
        rest,
        jobs,
        scopes: () => demandScopes(d.policy),
        isLeader: d.isLeader,
        restIntervalMs: opts.restIntervalMs,
        completedRetentionMs: opts.completedRetentionMs,
        ...(d.log === undefined ? {} : { log: d.log }),
      });
      sync.start();
      const s = sync;
      stops.push(() => s.stop());
    }
    return {
      jobs,
      ...(webhookPort === undefined ? {} : { webhookPort }),
      ...(sync === undefined ? {} : { sync }),
      stop: async () => {
        for (const s of stops.reverse()) await s();
      },
    };
  } catch (err) {
    for (const s of stops.reverse()) await s();
    throw err;
  }
}
