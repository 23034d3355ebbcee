// Registration budget, persistent lanes: one registration token per scope, reused by every lane created within
// its validity (minus a safety margin), counted on the GitHub emulator's own call counters, against the real
// world (nats-server, a real agent running lanes in a real systemd). Before, every create minted its own token:
// a content-creating request per lane.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { observeAndPlan } from "../../packages/coordinator/src/context/observe-world.js";
import { RegistrationTokenCache } from "../../packages/coordinator/src/apply/registration-tokens.js";
import { startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

let w: ApplyWorld;

async function tokenCalls(): Promise<number> {
  const s = await w.gh.control.stats();
  return Object.entries(s.byRoute)
    .filter(([route]) => route.startsWith("POST ") && route.endsWith("/actions/runners/registration-token"))
    .reduce((n, [, c]) => n + c.calls, 0);
}

beforeAll(async () => {
  w = await startApplyWorld();
});
afterAll(async () => {
  await w?.close();
});

describe("registration tokens are reused per scope", () => {
  it("three persistent lanes, then a fourth in a later apply of the same process: one token request in all", async () => {
    const cache = new RegistrationTokenCache();
    const before = await tokenCalls();
    const run = async (count: number): Promise<void> => {
      const p = w.policy(count);
      const { plan } = await observeAndPlan({ policy: p, github: w.github, store: w.store, inventory: w.inventory });
      const report = await w.engine(p, { registrationTokens: cache, concurrency: 3 }).run(plan);
      expect(report.ok, JSON.stringify(report.outcomes.map((o) => [o.kind, o.status, o.code]))).toBe(true);
    };
    await run(3);
    await run(4);
    expect(await tokenCalls()).toBe(before + 1);
    const runners = await w.gh.control.listRunners();
    expect(runners.filter((r) => r.status === "online")).toHaveLength(4);
    expect((await w.store.list()).every((r) => r.state === "active")).toBe(true);
  });

  it("a token with less than the safety margin left is not reused", async () => {
    // A clock an hour ahead sees the cached token (valid one hour) as expiring: the next create asks for a new one.
    const later = new RegistrationTokenCache({ now: () => Date.now() + 3_600_000 });
    const first = await later.get(w.github, "acme/api");
    const before = await tokenCalls();
    const second = await later.get(w.github, "acme/api");
    expect(await tokenCalls()).toBe(before + 1);
    expect(second.token.reveal()).not.toBe("");
    void first;
    const fresh = new RegistrationTokenCache();
    await fresh.get(w.github, "acme/api");
    const n = await tokenCalls();
    await fresh.get(w.github, "acme/api");
    expect(await tokenCalls()).toBe(n);
  });
});
