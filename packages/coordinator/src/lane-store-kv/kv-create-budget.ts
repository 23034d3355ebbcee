import { createHash } from "node:crypto";
import { systemClock, type Clock, type GitHubPolicy } from "@lanekeeper/shared";
import type { JetStreamClient, KV } from "nats";
import { budgetUsage, HOUR_MS, takeMint, type CreateBudget, type CreateBudgetGrant, type CreateBudgetLimits, type CreateBudgetUsage } from "../github/create-budget.js";
import { CREATE_BUDGET_BUCKET, CREATE_BUDGET_CAS_ATTEMPTS } from "../limits.js";
import { isKvConflict } from "./kv-conflict.js";

/** Options of {@link KvCreateBudget.open}. */
export interface KvCreateBudgetOptions {
  /** The limits, read at every take (a policy reload changes them). */
  readonly limits: () => CreateBudgetLimits;
  /** Which budget: one per GitHub credential ({@link createBudgetKey}). */
  readonly key: string;
  /** @default CREATE_BUDGET_BUCKET */
  readonly bucket?: string;
  /** KV replicas when the bucket is created. @default 1 */
  readonly replicas?: number;
  readonly clock?: Clock;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * The budget key of a GitHub credential: GitHub counts content creation per user or App installation, so every
 * coordinator with the same API URL and credential shares one budget, and another credential has its own.
 */
export function createBudgetKey(github: Pick<GitHubPolicy, "apiUrl" | "auth">): string {
  const who = "app" in github.auth ? `app:${github.auth.app.appId}:${github.auth.app.installationId}` : `token:${github.auth.tokenEnv}`;
  return `creates_${createHash("sha256").update(`${github.apiUrl}\u0000${who}`).digest("hex").slice(0, 24)}`;
}

function parseMints(v: Uint8Array | undefined): number[] {
  if (v === undefined || v.length === 0) return [];
  try {
    const o = JSON.parse(dec.decode(v)) as { mints?: unknown };
    return Array.isArray(o.mints) ? o.mints.filter((t): t is number => typeof t === "number" && Number.isFinite(t)) : [];
  } catch {
    // A damaged entry is rewritten at the next take; until then it counts as empty (GitHub's own limit still holds).
    return [];
  }
}

/**
 * The {@link CreateBudget} shared by every coordinator process through one JetStream KV key: the mint times of the
 * last hour, changed only by compare-and-set on the key's revision, so two processes taking the last slot at once
 * cannot both get it. Entries age out of the bucket after an hour without mints.
 */
export class KvCreateBudget implements CreateBudget {
  private readonly clock: Clock;

  private constructor(
    private readonly kv: KV,
    private readonly opts: KvCreateBudgetOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Open (creating if needed) the budget bucket. */
  static async open(js: JetStreamClient, opts: KvCreateBudgetOptions): Promise<KvCreateBudget> {
    const kv = await js.views.kv(opts.bucket ?? CREATE_BUDGET_BUCKET, { history: 1, ttl: HOUR_MS, replicas: opts.replicas ?? 1 });
    return new KvCreateBudget(kv, opts);
  }

  async take(): Promise<CreateBudgetGrant> {
    for (let attempt = 0; attempt < CREATE_BUDGET_CAS_ATTEMPTS; attempt++) {
      const e = await this.kv.get(this.opts.key);
      const present = e !== null && e.operation === "PUT";
      const r = takeMint(present ? parseMints(e.value) : [], this.opts.limits(), this.clock.now());
      if (!r.granted) return { granted: false, usage: r.usage };
      const value = enc.encode(JSON.stringify({ mints: r.mints }));
      try {
        if (present) await this.kv.update(this.opts.key, value, e.revision);
        else await this.kv.create(this.opts.key, value);
        return { granted: true, usage: r.usage };
      } catch (err) {
        // Another coordinator took a slot in between: read again.
        if (!isKvConflict(err)) throw err;
      }
    }
    // Heavy contention: refuse rather than spin; the create is planned again in the next cycle.
    return { granted: false, usage: await this.usage() };
  }

  async usage(): Promise<CreateBudgetUsage> {
    const e = await this.kv.get(this.opts.key);
    return budgetUsage(e === null || e.operation !== "PUT" ? [] : parseMints(e.value), this.opts.limits(), this.clock.now());
  }
}
