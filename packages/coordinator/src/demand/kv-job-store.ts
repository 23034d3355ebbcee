import { KvWatchInclude, type JetStreamClient, type KV, type KvEntry, type QueuedIterator } from "nats";
import type { DemandJob } from "../observe/demand.js";
import { mergeDemandJob } from "./demand-job-merge.js";
import { JobStoreUnavailableError } from "./demand-errors.js";
import { completedAtOf, type JobStore, type JobTransition } from "./job-store.js";
import { JOB_UPDATE_ATTEMPTS, JOBS_BUCKET, MAX_JOB_LABELS } from "./limits.js";
import { isKvConflict } from "../lane-store-kv/kv-conflict.js";

/** Options of {@link KvJobStore.open}. */
export interface KvJobStoreOptions {
  /** @default JOBS_BUCKET */
  readonly bucket?: string;
  /** KV replicas when the bucket is created. @default 1 */
  readonly replicas?: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const JOB_PREFIX = "job.";
const RECONCILED_KEY = "meta.reconciled";
const STATUSES = new Set(["queued", "in_progress", "completed"]);

const optNum = (v: unknown): boolean => v === undefined || (typeof v === "number" && Number.isFinite(v));

/** A stored job, checked field by field; `undefined` for anything that is not one (written by hand, corrupt). */
export function decodeJob(key: string, value: Uint8Array): DemandJob | undefined {
  let o: unknown;
  try {
    o = JSON.parse(dec.decode(value));
  } catch {
    return undefined;
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) return undefined;
  const j = o as Record<string, unknown>;
  if (typeof j.id !== "number" || `${JOB_PREFIX}${j.id}` !== key || typeof j.runId !== "number") return undefined;
  if (typeof j.scope !== "string" || typeof j.repository !== "string" || typeof j.status !== "string" || !STATUSES.has(j.status)) return undefined;
  if (!Array.isArray(j.labels) || j.labels.length > MAX_JOB_LABELS || !j.labels.every((l) => typeof l === "string")) return undefined;
  if (typeof j.createdAtMs !== "number" || !optNum(j.startedAtMs) || !optNum(j.completedAtMs)) return undefined;
  if (j.runnerName !== undefined && typeof j.runnerName !== "string") return undefined;
  if (j.source !== "webhook" && j.source !== "rest") return undefined;
  return {
    id: j.id,
    runId: j.runId,
    scope: j.scope,
    repository: j.repository,
    labels: j.labels,
    status: j.status as DemandJob["status"],
    ...(j.runnerName === undefined ? {} : { runnerName: j.runnerName }),
    createdAtMs: j.createdAtMs,
    ...(j.startedAtMs === undefined ? {} : { startedAtMs: j.startedAtMs as number }),
    ...(j.completedAtMs === undefined ? {} : { completedAtMs: j.completedAtMs as number }),
    source: j.source,
  };
}

/**
 * The durable {@link JobStore}: one JetStream KV entry per workflow job (bucket `lk_jobs`, key `job.<id>`) and the
 * per-scope reconciliation times under `meta.reconciled`. Writes are compare-and-set on the entry's revision, so a
 * webhook on one coordinator and a REST pass on another never lose each other's update, and the merge keeps a
 * job's state moving forward only. Completed jobs are purged after the retention window by {@link prune}.
 */
export class KvJobStore implements JobStore {
  private constructor(private readonly kv: KV) {}

  /** Open (creating if needed) the bucket. The coordinator's NATS user needs JetStream rights on it. */
  static async open(js: JetStreamClient, opts: KvJobStoreOptions = {}): Promise<KvJobStore> {
    try {
      return new KvJobStore(await js.views.kv(opts.bucket ?? JOBS_BUCKET, { history: 1, replicas: opts.replicas ?? 1 }));
    } catch (err) {
      throw new JobStoreUnavailableError(`cannot open the job store (KV bucket ${opts.bucket ?? JOBS_BUCKET}): ${(err as Error).message}`, { cause: err });
    }
  }

  async record(job: DemandJob): Promise<JobTransition | undefined> {
    const key = `${JOB_PREFIX}${job.id}`;
    for (let attempt = 1; ; attempt++) {
      const e = await this.entry(key);
      const before = e?.operation === "PUT" ? decodeJob(key, e.value) : undefined;
      const after = mergeDemandJob(before, job);
      if (after === undefined) return undefined;
      try {
        const value = enc.encode(JSON.stringify(after));
        if (e === null) await this.kv.create(key, value);
        else await this.kv.update(key, value, e.revision);
        return { before, after };
      } catch (err) {
        if (!isKvConflict(err) || attempt >= JOB_UPDATE_ATTEMPTS) {
          throw new JobStoreUnavailableError(`cannot store workflow job ${job.id}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
  }

  /**
   * Call `onJob` for every job written from now on, by any coordinator (a follower's receiver, the leader's REST
   * pass): how the leader hears of demand that reached another process. Answers a function that stops watching.
   */
  async watch(onJob: (job: DemandJob) => void): Promise<() => void> {
    let iter: QueuedIterator<KvEntry>;
    try {
      iter = await this.kv.watch({ key: `${JOB_PREFIX}>`, include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
    } catch (err) {
      throw new JobStoreUnavailableError(`cannot watch the job store: ${(err as Error).message}`, { cause: err });
    }
    void (async () => {
      for await (const e of iter) {
        if (e.operation !== "PUT") continue;
        const job = decodeJob(e.key, e.value);
        if (job !== undefined) onJob(job);
      }
    })().catch(() => undefined);
    return () => iter.stop();
  }

  async get(id: number): Promise<DemandJob | undefined> {
    const key = `${JOB_PREFIX}${id}`;
    const e = await this.entry(key);
    return e?.operation === "PUT" ? decodeJob(key, e.value) : undefined;
  }

  async list(): Promise<DemandJob[]> {
    return [...(await this.entries()).values()].map((x) => x.job).sort((a, b) => a.id - b.id);
  }

  async prune(beforeMs: number): Promise<number> {
    let n = 0;
    for (const [key, { job, revision }] of await this.entries()) {
      if (job.status !== "completed" || completedAtOf(job) >= beforeMs) continue;
      try {
        await this.kv.purge(key, { previousSeq: revision });
        n++;
      } catch (err) {
        // Someone wrote it meanwhile: the next prune looks again.
        if (!isKvConflict(err)) throw new JobStoreUnavailableError(`cannot prune workflow job ${job.id}: ${(err as Error).message}`, { cause: err });
      }
    }
    return n;
  }

  async reconciledAt(): Promise<Record<string, number>> {
    return (await this.reconciledEntry()).times;
  }

  async markReconciled(scope: string, atMs: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const { times, revision } = await this.reconciledEntry();
      if ((times[scope] ?? 0) >= atMs) return;
      const value = enc.encode(JSON.stringify({ ...times, [scope]: atMs }));
      try {
        if (revision === undefined) await this.kv.create(RECONCILED_KEY, value);
        else await this.kv.update(RECONCILED_KEY, value, revision);
        return;
      } catch (err) {
        if (!isKvConflict(err) || attempt >= JOB_UPDATE_ATTEMPTS) {
          throw new JobStoreUnavailableError(`cannot record the reconciliation of ${scope}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
  }

  private async reconciledEntry(): Promise<{ times: Record<string, number>; revision: number | undefined }> {
    const e = await this.entry(RECONCILED_KEY);
    if (e === null) return { times: {}, revision: undefined };
    const times: Record<string, number> = {};
    if (e.operation === "PUT") {
      try {
        const o = JSON.parse(dec.decode(e.value)) as unknown;
        if (typeof o === "object" && o !== null && !Array.isArray(o)) {
          for (const [k, v] of Object.entries(o)) if (typeof v === "number" && Number.isFinite(v)) times[k] = v;
        }
      } catch {
        // A corrupt entry is overwritten by the next reconciliation.
      }
    }
    return { times, revision: e.revision };
  }

  private async entry(key: string): Promise<KvEntry | null> {
    try {
      return await this.kv.get(key);
    } catch (err) {
      throw new JobStoreUnavailableError(`cannot read the job store: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Every job entry, read in one ordered watch over the bucket's last values. */
  private async entries(): Promise<Map<string, { job: DemandJob; revision: number }>> {
    const out = new Map<string, { job: DemandJob; revision: number }>();
    try {
      // The watch yields every key's last value, then calls initializedFn; stopping the iterator there still
      // lets the loop take what is already queued, so the loop ends with the whole bucket read.
      const held: { iter?: QueuedIterator<KvEntry>; initialized?: boolean } = {};
      const iter = await this.kv.watch({
        key: `${JOB_PREFIX}>`,
        ignoreDeletes: true,
        initializedFn: () => {
          held.initialized = true;
          held.iter?.stop();
        },
      });
      held.iter = iter;
      if (held.initialized === true) iter.stop();
      for await (const e of iter) {
        if (e.operation !== "PUT") {
          out.delete(e.key);
          continue;
        }
        const job = decodeJob(e.key, e.value);
        if (job !== undefined) out.set(e.key, { job, revision: e.revision });
      }
    } catch (err) {
      throw new JobStoreUnavailableError(`cannot list the job store: ${(err as Error).message}`, { cause: err });
    }
    return out;
  }
}
