import { canonicalLabels, drainingLabels, identityLabels } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { githubRunner, hostPolicy, makePolicy } from "@lanekeeper/testing";
import type { GitHubRunner } from "../github/github-types.js";
import type { Guard } from "../plan/guard.js";
import type { FreshView } from "./fresh-view.js";
import { checkGuard } from "./guard-check.js";

const S = "acme/api";
const policy = makePolicy({
  hosts: { h1: hostPolicy(1) },
  scopes: { [S]: { optIn: true } },
  pools: { p: { labels: ["linux"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
  lanes: [{ scope: S, pool: "p", count: 1, hosts: ["h1"] }],
});
const id = { laneId: "p-aaaaaa", hostId: "h1", pool: "p" };
const guard: Guard = { kind: "runner-identity-labels", scope: S, runnerId: 7, ...id };

/** A view whose only runner is `r` (by id); the identity guard reads nothing else. */
function viewWith(r: GitHubRunner | undefined): FreshView {
  return { runner: (_scope: string, runnerId: number) => Promise.resolve(r?.id === runnerId ? r : undefined) } as unknown as FreshView;
}

async function identityGuard(labels: readonly string[]): Promise<boolean> {
  return (await checkGuard(guard, viewWith(githubRunner(7, labels)), policy, { scope: S })).ok;
}

describe("checkGuard runner-identity-labels", () => {
  it("passes on the canonical set and on the reduced draining set of the lane (lk-lane-<id>, lk-draining)", async () => {
    expect(await identityGuard(canonicalLabels({ ...id, capabilityLabels: ["linux"] }))).toBe(true);
    expect(await identityGuard(drainingLabels(id))).toBe(true);
    // A lane drained before the reduced set: identity labels plus lk-draining.
    expect(await identityGuard([...identityLabels(id), "lk-draining"])).toBe(true);
  });

  it("fails on another lane's draining set, a partial identity, another host label, or a missing runner", async () => {
    expect(await identityGuard(drainingLabels({ laneId: "p-bbbbbb" }))).toBe(false);
    expect(await identityGuard(["lk-lane-p-aaaaaa", "linux"])).toBe(false);
    expect(await identityGuard([...identityLabels(id), "lk-host-h2"])).toBe(false);
    expect((await checkGuard(guard, viewWith(undefined), policy, { scope: S })).ok).toBe(false);
  });
});

describe("checkGuard upgrade-window-open", () => {
  const windowGuard: Guard = { kind: "upgrade-window-open", pool: "p", window: "nightly" };
  const withWindow = (timezone: string): typeof policy =>
    ({ ...policy, pools: { p: { ...policy.pools.p!, upgrade: { window: { name: "nightly", cron: "0 22 * * *", duration: "4h", timezone } } } } });
  const viewAt = (iso: string): FreshView => ({ nowMs: Date.parse(iso) }) as unknown as FreshView;

  it("passes while the window of the policy apply runs with is open, fails once it has closed", async () => {
    expect((await checkGuard(windowGuard, viewAt("2026-12-05T23:00:00Z"), withWindow("UTC"), { scope: S })).ok).toBe(true);
    const closed = await checkGuard(windowGuard, viewAt("2026-12-06T02:00:00Z"), withWindow("UTC"), { scope: S });
    expect(closed).toMatchObject({ ok: false });
    expect(closed.ok ? "" : closed.why).toBe(
      "upgrade window nightly of pool p open (or removed from the policy): closed, opens 2026-12-06 22:00 UTC (2026-12-06T22:00:00Z)",
    );
    // The same instant is 03:00 in Berlin: closed there too; 21:30 UTC is 22:30 in Berlin: open.
    expect((await checkGuard(windowGuard, viewAt("2026-12-05T21:30:00Z"), withWindow("Europe/Berlin"), { scope: S })).ok).toBe(true);
    expect((await checkGuard(windowGuard, viewAt("2026-12-05T21:30:00Z"), withWindow("UTC"), { scope: S })).ok).toBe(false);
  });

  it("passes when the policy no longer has a window for the pool", async () => {
    expect((await checkGuard(windowGuard, viewAt("2026-12-06T02:00:00Z"), policy, { scope: S })).ok).toBe(true);
  });
});
