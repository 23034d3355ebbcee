import { LATEST_RUNNER_VERSION, type PoolPolicy } from "@lanekeeper/shared";
import type { RunnerReleaseObservation } from "../observe/runner-releases.js";

/**
 * What a pool's lanes should run: a runner version (systemd pools; `latest` resolved against GitHub's current
 * release), or an image digest (container pools). `unresolved` when the pool says `latest` and GitHub's release
 * could not be read: nothing is created or upgraded in that pool until it can.
 */
export type WantedRunner =
  | { readonly kind: "runner"; readonly version: string; readonly source: "pinned" | "latest" }
  | { readonly kind: "image"; readonly image: string }
  | { readonly kind: "unresolved"; readonly why: string };

/** The wanted runner of a pool, given what the observation learnt about GitHub's current release. */
export function wantedRunner(pool: PoolPolicy, releases: RunnerReleaseObservation | undefined): WantedRunner {
  if (pool.backend === "container") {
    return pool.image === undefined ? { kind: "unresolved", why: "the pool names no image" } : { kind: "image", image: pool.image };
  }
  const v = pool.runnerVersion;
  if (v === undefined) return { kind: "unresolved", why: "the pool names no runnerVersion" };
  if (v !== LATEST_RUNNER_VERSION) return { kind: "runner", version: v, source: "pinned" };
  if (releases === undefined) return { kind: "unresolved", why: "GitHub's runner downloads were not read" };
  if (releases.status !== "ok") return { kind: "unresolved", why: `GitHub's runner downloads could not be read (${releases.code}): ${releases.message}` };
  return { kind: "runner", version: releases.latest, source: "latest" };
}

/** The version or image string a wanted runner names (`""` when unresolved). */
export function wantedString(w: WantedRunner): string {
  return w.kind === "runner" ? w.version : w.kind === "image" ? w.image : "";
}

function parts(v: string): [number, number, number] | undefined {
  const m = /^(\d{1,6})\.(\d{1,6})\.(\d{1,6})$/.exec(v);
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Numeric order of two `x.y.z` versions (negative when `a` is older); `undefined` when one does not parse. */
export function compareRunnerVersions(a: string, b: string): number | undefined {
  const pa = parts(a);
  const pb = parts(b);
  if (pa === undefined || pb === undefined) return undefined;
  return pa[0] - pb[0] || pa[1] - pb[1] || pa[2] - pb[2];
}

/**
 * How many minor releases `pinned` is behind `latest` (0 when current or newer). The runner's releases move the
 * minor number (2.330.0, 2.331.0, ...), and GitHub's deprecation of old runners is counted in releases, so the lag
 * is counted in minors; a major behind counts as infinitely far.
 */
export function minorLag(pinned: string, latest: string): number {
  const p = parts(pinned);
  const l = parts(latest);
  if (p === undefined || l === undefined) return 0;
  if (p[0] !== l[0]) return p[0] < l[0] ? Number.POSITIVE_INFINITY : 0;
  return Math.max(0, l[1] - p[1]);
}
