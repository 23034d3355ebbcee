// The GitHub create budget shared by two coordinators (two processes' worth of parts: each its own NATS connection,
// GitHub client and budget handle) through the real nats-server, against the GitHub emulator: together they mint
// no more JIT configs than the budget allows, a refused mint sends nothing (CREATE_BUDGET_EXHAUSTED), and a
// registration token served from the cache is not counted.
import { startGitHubEmulator, startNatsServer, type GitHubEmulator, type NatsServerHandle } from "@lanekeeper/harness";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistrationTokenCache } from "../../packages/coordinator/src/apply/registration-tokens.js";
import { CreateBudgetExhaustedError, withCreateBudget } from "../../packages/coordinator/src/github/budgeted-github-client.js";
import type { GitHubClient } from "../../packages/coordinator/src/github/github-client.js";
import { OctokitGitHubClient } from "../../packages/coordinator/src/github/octokit-github-client.js";
import { RedactedSecret } from "../../packages/coordinator/src/github/redacted-secret.js";
import { createBudgetKey, KvCreateBudget } from "../../packages/coordinator/src/lane-store-kv/kv-create-budget.js";

const SCOPE = "acme/api";
let gh: GitHubEmulator;
let nats: NatsServerHandle;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  gh = await startGitHubEmulator({ repos: [SCOPE] });
  nats = await startNatsServer();
});
afterAll(async () => {
  for (const c of conns) await c.close();
  await nats?.stop();
  await gh?.stop();
});

const limits = { perMinute: 5, perHour: 500 };
const key = (): string => createBudgetKey({ apiUrl: gh.apiUrl, auth: { tokenEnv: "LK_TEST_GITHUB_TOKEN" } });

/** One coordinator's GitHub client with the shared budget. */
async function coordinator(): Promise<GitHubClient> {
  const nc = await connect({ servers: nats.url });
  conns.push(nc);
  const raw = new OctokitGitHubClient({ apiUrl: gh.apiUrl, credential: { kind: "token", token: new RedactedSecret(gh.token) }, retryBaseMs: 5 });
  return withCreateBudget(raw, await KvCreateBudget.open(nc.jetstream(), { key: key(), limits: () => limits }));
}

const jitCalls = async (): Promise<number> => (await gh.control.stats()).byRoute["POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig"]?.calls ?? 0;

describe("the create budget across coordinators", () => {
  it("two coordinators minting at once stay within the shared budget; refusals send nothing", async () => {
    const a = await coordinator();
    const b = await coordinator();
    const before = await jitCalls();
    const mint = (c: GitHubClient, n: number) => c.generateJitConfig(SCOPE, { name: `budget-${n}`, runnerGroupId: 1, labels: ["lk-managed", `lk-lane-budget-${n}`] });
    const results = await Promise.allSettled([0, 1, 2, 3, 4, 5, 6, 7].map((n) => mint(n % 2 === 0 ? a : b, n)));
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    expect(ok).toHaveLength(5);
    expect(refused).toHaveLength(3);
    for (const e of refused) {
      expect(e).toBeInstanceOf(CreateBudgetExhaustedError);
      expect((e as CreateBudgetExhaustedError).code).toBe("CREATE_BUDGET_EXHAUSTED");
      expect((e as Error).message).toMatch(/5\/5 this minute, 5\/500 this hour, shared by every coordinator/);
    }
    // GitHub saw exactly the granted mints.
    expect((await jitCalls()) - before).toBe(5);
    // Both see the same usage.
    expect(await a.createBudgetUsage?.()).toMatchObject({ thisMinute: 5, allowance: 0 });
    expect(await b.createBudgetUsage?.()).toMatchObject({ thisMinute: 5, allowance: 0 });
  });

  it("a registration token served from the per-process cache is not a mint; the one real mint is", async () => {
    const nc = await connect({ servers: nats.url });
    conns.push(nc);
    const raw = new OctokitGitHubClient({ apiUrl: gh.apiUrl, credential: { kind: "token", token: new RedactedSecret(gh.token) }, retryBaseMs: 5 });
    const budget = await KvCreateBudget.open(nc.jetstream(), { key: `${key()}_tokens`, limits: () => limits });
    const c = withCreateBudget(raw, budget);
    const cache = new RegistrationTokenCache();
    const t1 = await cache.get(c, SCOPE);
    const t2 = await cache.get(c, SCOPE);
    expect(t2).toBe(t1);
    expect(await budget.usage()).toMatchObject({ thisMinute: 1 });
  });
});
