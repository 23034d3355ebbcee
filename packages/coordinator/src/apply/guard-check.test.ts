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
