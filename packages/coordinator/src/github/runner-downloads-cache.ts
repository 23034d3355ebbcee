import type { Clock } from "@lanekeeper/shared";
import type { RunnerApplication } from "./github-types.js";

/**
 * GitHub's runner downloads listing (`GET {scope}/actions/runners/downloads`), kept for `ttlMs`. GitHub publishes
 * one runner release for everyone, so the endpoint answers the same for every repository and organization (the
 * plan already reads it for one scope only, see `observeRunnerReleases`), and a release comes out every few weeks.
 * Without this, every systemd create read the listing again (one request per lane: 20,000 for a fleet created from
 * empty) and every reconcile spent a request on it beside the one listing per scope. One answer, from whichever
 * scope asked first, serves every scope until it is `ttlMs` old; reads arriving while one is in flight share it.
 * A failed read is not kept: the next call asks again.
 */
export class RunnerDownloadsCache {
  private entry: { readonly value: readonly RunnerApplication[]; readonly fetchedAtMs: number } | undefined;
  private pending: Promise<readonly RunnerApplication[]> | undefined;

  constructor(
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  /** The kept listing while younger than the TTL, else `load()`'s answer (kept from the moment it was asked for). */
  async get(load: () => Promise<readonly RunnerApplication[]>): Promise<readonly RunnerApplication[]> {
    const e = this.entry;
    if (e !== undefined && this.clock.now() - e.fetchedAtMs < this.ttlMs) return e.value;
    if (this.pending !== undefined) return this.pending;
    const askedAtMs = this.clock.now();
    const p = load().then((value) => {
      if (this.ttlMs > 0) this.entry = { value, fetchedAtMs: askedAtMs };
      return value;
    });
    this.pending = p;
    try {
      return await p;
    } finally {
      if (this.pending === p) this.pending = undefined;
    }
  }
}
