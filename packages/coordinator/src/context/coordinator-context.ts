import { readFile } from "node:fs/promises";
import { credsAuthenticator, type ConnectionOptions, type JetStreamClient, type JetStreamManager, type NatsConnection } from "nats";
import {
  LanekeeperError,
  parseSealingPublicKey,
  parseSigningPublicKey,
  signingKeyFromPem,
  systemClock,
  type Clock,
  type Logger,
  resolveCreateBudget,
  type Policy,
  type SigningKey,
} from "@lanekeeper/shared";
import { withCreateBudget } from "../github/budgeted-github-client.js";
import { createBudgetKey, KvCreateBudget } from "../lane-store-kv/kv-create-budget.js";
import { CoordinatorAudit } from "../audit/coordinator-audit.js";
import { Dispatcher, resolveDispatcherOptions } from "../dispatch/dispatcher.js";
import { StaticHostRegistry, type EnrolledHost } from "../dispatch/host-registry.js";
import { InventoryCollector } from "../dispatch/inventory-collector.js";
import { KvSequenceAllocator } from "../dispatch/sequence-allocator.js";
import { createGitHubClient } from "../github/github-client-from-policy.js";
import type { GitHubClient } from "../github/github-client.js";
import { KvLaneStore, LANES_BUCKET } from "../lane-store-kv/kv-lane-store.js";
import { LaneFence } from "../lane-store-kv/lane-fence.js";
import { KvOperationLeases } from "../lane-store-kv/kv-operation-leases.js";
import { instanceName } from "../audit/coordinator-audit.js";
import { ApplyEngine, type ApplyEngineOptions } from "../apply/apply-engine.js";
import { RegistrationTokenCache } from "../apply/registration-tokens.js";
import { CollectorInventorySource } from "./collector-inventory-source.js";
import { DEFAULT_INVENTORY_WAIT_MS } from "../apply/limits.js";
import { hostsToObserve } from "./observe-world.js";
import { checkJetStreamReplicas } from "./jetstream-replicas.js";
import type { CoordinatorErrorCode } from "../error-codes.js";
import { DEFAULT_NATS_OPEN_WAIT_MS } from "../limits.js";
import { NatsOpening, NatsUnavailableError } from "./nats-opening.js";

export { NatsUnavailableError };

/** The coordinator's signing key file could not be read or parsed. */
export class CoordinatorKeyError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("COORDINATOR_KEY", message, options);
  }
}

/** Where secrets and files come from (injectable for tests). */
export interface ContextSources {
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly log?: Logger;
  readonly clock?: Clock;
  /** Name of this coordinator instance in the audit stream subject. @default host name */
  readonly instance?: string;
  /** GitHub requests kept for removals. */
  readonly rateLimitReserve?: number;
  /** fetch for the GitHub client (tests). */
  readonly fetch?: typeof fetch;
  /**
   * How long opening retries NATS (every server, then again with backoff) while it does not answer: a node just
   * died and its streams are electing new leaders, or the cluster is restarting. @default DEFAULT_NATS_OPEN_WAIT_MS
   */
  readonly natsWaitMs?: number;
}

/** Everything a running coordinator uses, opened from the policy. */
export interface CoordinatorContext {
  readonly policy: Policy;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly github: GitHubClient;
  readonly hosts: StaticHostRegistry;
  readonly signingKey: SigningKey;
  readonly store: KvLaneStore;
  /**
   * Fencing of every lane-record write and intent: this process acts under the fence's epoch as it was at open (a
   * CLI command, under whoever leads) until `serve` takes the lead with a new one (`fence.lead`).
   */
  readonly fence: LaneFence;
  /** Leases of the actions this process runs, and who else runs what (see `apply/operation-leases.ts`). */
  readonly leases: KvOperationLeases;
  readonly sequences: KvSequenceAllocator;
  readonly collector: InventoryCollector;
  readonly inventory: CollectorInventorySource;
  readonly dispatcher: Dispatcher;
  readonly audit: CoordinatorAudit;
  readonly clock: Clock;
  /** An apply engine over this context (options override the policy's drain timing, verify timeouts, ...). */
  engine(over?: Partial<ApplyEngineOptions>): ApplyEngine;
  /**
   * Wait until every enrolled, opted-in host has sent this process a fresh inventory, or `timeoutMs` passed
   * (a one-shot CLI must not plan from an old snapshot in the KV bucket). Returns the hosts still unheard.
   */
  waitForInventories(timeoutMs?: number, onlyHosts?: readonly string[]): Promise<string[]>;
  close(): Promise<void>;
}

/** The enrolled hosts of the policy, keys decoded (a bad key is a config error that names the host). */
export function enrolledHostsFromPolicy(policy: Policy): EnrolledHost[] {
  const hosts: EnrolledHost[] = [];
  for (const [hostId, h] of Object.entries(policy.hosts)) {
    hosts.push({ hostId, identityKey: parseSigningPublicKey(h.enrolled.identityKey), sealingKey: parseSealingPublicKey(h.enrolled.sealingKey) });
  }
  return hosts;
}

/** A host registry over the policy's enrolled hosts ({@link enrolledHostsFromPolicy}). */
export function hostRegistryFromPolicy(policy: Policy): StaticHostRegistry {
  return new StaticHostRegistry(enrolledHostsFromPolicy(policy));
}

/** NATS connection options from the policy: URL, user and password from the named env var, or a creds file. */
export async function natsOptionsFromPolicy(policy: Policy, env: Readonly<Record<string, string | undefined>>): Promise<ConnectionOptions> {
  const c = policy.coordinator;
  // noAsyncTraces: nats.js otherwise captures two stack traces per request (for a timeout that rarely comes),
  // a measurable share of the CPU of sending an intent; dispatch errors carry their own context.
  const opts: ConnectionOptions = { servers: c.natsServers, name: "lanekeeper", timeout: 10_000, maxReconnectAttempts: -1, noAsyncTraces: true };
  if (c.natsUser !== undefined && c.natsPasswordEnv !== undefined) {
    const pass = env[c.natsPasswordEnv];
    if (pass === undefined || pass === "") {
      throw new NatsUnavailableError(`the environment variable ${c.natsPasswordEnv} (coordinator.natsPasswordEnv) is not set; export the NATS password there`);
    }
    return { ...opts, user: c.natsUser, pass };
  }
  if (c.natsCredsFile !== undefined) {
    let creds: string;
    try {
      creds = await readFile(c.natsCredsFile, "utf8");
    } catch (err) {
      throw new NatsUnavailableError(`cannot read the NATS credentials file ${c.natsCredsFile} (coordinator.natsCredsFile)`, { cause: err });
    }
    return { ...opts, authenticator: credsAuthenticator(new TextEncoder().encode(creds)) };
  }
  return opts;
}

/** Read the coordinator's signing key (PKCS#8 PEM). */
export async function readSigningKey(path: string): Promise<SigningKey> {
  let pem: string;
  try {
    pem = await readFile(path, "utf8");
  } catch (err) {
    throw new CoordinatorKeyError(
      `cannot read the coordinator signing key ${path} (coordinator.keyFile): ${(err as NodeJS.ErrnoException).code ?? "unreadable"}; create one with \`lanekeeper keys generate\``,
      { cause: err },
    );
  }
  try {
    return signingKeyFromPem(pem);
  } catch (err) {
    throw new CoordinatorKeyError(`${path} is not an Ed25519 private key (PKCS#8 PEM)`, { cause: err });
  }
}

/**
 * Open the coordinator from its policy: NATS (JetStream KV buckets for lane records and intent sequences, the
 * inventory bucket and subscription, the audit stream), the GitHub client, the signing key, the dispatcher and
 * the local audit chain. `close()` undoes it all.
 */
export async function openCoordinator(policy: Policy, sources: ContextSources = {}): Promise<CoordinatorContext> {
  const env = sources.env ?? process.env;
  const clock = sources.clock ?? systemClock;
  const hosts = hostRegistryFromPolicy(policy);
  const signingKey = await readSigningKey(policy.coordinator.keyFile);
  const rawGithub = await createGitHubClient(policy.github, {
    env,
    clock,
    ...(sources.log === undefined ? {} : { log: sources.log }),
    ...(sources.rateLimitReserve === undefined ? {} : { rateLimitReserve: sources.rateLimitReserve }),
    ...(sources.fetch === undefined ? {} : { fetch: sources.fetch }),
  });
  const servers = policy.coordinator.natsServers;
  const opening = new NatsOpening({
    servers,
    waitMs: sources.natsWaitMs ?? DEFAULT_NATS_OPEN_WAIT_MS,
    clock,
    ...(sources.log === undefined ? {} : { log: sources.log }),
  });
  // Each step is retried on its own (they are idempotent: buckets are created or bound), all within one deadline.
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await opening.run(what, fn);
    } catch (err) {
      if (err instanceof LanekeeperError) throw err;
      throw new NatsUnavailableError(`cannot ${what} at ${servers.join(", ")}: ${(err as Error).message}`, { cause: err });
    }
  };
  const nc = await step("connect to NATS", async () => opening.connect(await natsOptionsFromPolicy(policy, env)));
  const closers: (() => Promise<unknown>)[] = [() => nc.drain().catch(() => nc.close())];
  try {
    const js = nc.jetstream();
    const inventory = new CollectorInventorySource(clock);
    const jsm = await step("open JetStream", () => nc.jetstreamManager());
    const replicas = policy.coordinator.jetstreamReplicas;
    await step("read the JetStream streams' replica counts", () => checkJetStreamReplicas(jsm, replicas));
    // One create budget per GitHub credential, shared by every coordinator process (docs/coordinator.md).
    const budget = await step("open the create budget", () =>
      KvCreateBudget.open(js, { key: createBudgetKey(policy.github), limits: () => resolveCreateBudget(policy.github), replicas, clock }),
    );
    const github: GitHubClient = withCreateBudget(rawGithub, budget);
    const store = await step(`open the KV bucket ${LANES_BUCKET}`, () => KvLaneStore.open(js, { replicas }));
    const fence = await step("read the fence", async () => {
      const f = await LaneFence.open(js, LANES_BUCKET);
      store.attachFence(f);
      await f.follow();
      return f;
    });
    const sequences = await step("open the sequence bucket", () => KvSequenceAllocator.open(js, { replicas }));
    const leases = await step("open the operation leases", () =>
      KvOperationLeases.open(js, {
        replicas,
        instance: instanceName(sources.instance),
        clock,
        ...(sources.log === undefined ? {} : { log: sources.log }),
      }),
    );
    const collector = await step("open the inventory bucket", () =>
      InventoryCollector.open(js, {
        hosts,
        clock,
        replicas,
        onSnapshot: inventory.onSnapshot,
        ...(sources.log === undefined ? {} : { log: sources.log }),
      }),
    );
    closers.unshift(() => leases.close());
    inventory.attach(collector);
    collector.start(nc);
    closers.unshift(() => collector.stop());
    const dispatcher = new Dispatcher(
      resolveDispatcherOptions(
        {
          nc,
          signingKey,
          sequences,
          hosts,
          clock,
          agentHwm: (h) => collector.agentHwm(h),
          fence,
          ...(sources.log === undefined ? {} : { log: sources.log }),
        },
        policy.coordinator,
      ),
    );
    // Not retried: it opens the local chain file, and keeps records local while the audit stream does not answer.
    const audit = await CoordinatorAudit.open({
      path: policy.coordinator.auditFile,
      js,
      jsm,
      replicas,
      clock,
      ...(sources.instance === undefined ? {} : { instance: sources.instance }),
      ...(sources.log === undefined ? {} : { log: sources.log }),
    });
    closers.unshift(() => audit.close());
    await step("flush the connection", () => nc.flush());
    // One per process: every engine of a `serve` (each cycle's) reuses the tokens of earlier cycles.
    const registrationTokens = new RegistrationTokenCache(clock);
    const ctx: CoordinatorContext = {
      policy,
      nc,
      js,
      jsm,
      github,
      hosts,
      signingKey,
      store,
      fence,
      leases,
      sequences,
      collector,
      inventory,
      dispatcher,
      audit,
      clock,
      engine: (over = {}) =>
        new ApplyEngine({
          policy,
          github,
          store,
          leases,
          registrationTokens,
          dispatcher,
          inventory,
          audit,
          clock,
          ...(sources.log === undefined ? {} : { log: sources.log }),
          ...over,
        }),
      async waitForInventories(timeoutMs = DEFAULT_INVENTORY_WAIT_MS, onlyHosts) {
        const records = onlyHosts === undefined ? await store.list() : [];
        const wanted = (onlyHosts ?? hostsToObserve(policy, records)).filter((h) => policy.hosts[h]?.optIn === true);
        const until = clock.now() + timeoutMs;
        const start = clock.now();
        for (;;) {
          const missing: string[] = [];
          for (const h of wanted) {
            const s = await inventory.latest(h);
            // Received live by this process: a snapshot in the bucket may predate a change on the host (an agent
            // restarted with a new allowlist a second ago), and plans must rest on what the host says now.
            if (s === undefined || s.receivedAtMs < start) missing.push(h);
          }
          if (missing.length === 0 || clock.now() >= until) return missing;
          await inventory.nextSnapshot(Math.max(1, Math.min(500, until - clock.now())));
        }
      },
      async close() {
        for (const c of closers) await c().catch(() => undefined);
      },
    };
    return ctx;
  } catch (err) {
    for (const c of closers) await c().catch(() => undefined);
    throw err;
  }
}
