/**
 * Synthetic fleets for the planner's tests and the coordinator benchmark: builders with sensible defaults and a
 * converged steady-state fleet of any size. (The property test draws its random worlds with fast-check.)
 */
import {
  Backend,
  canonicalLabels,
  Health,
  LaneMode,
  LaneState,
  type LaneObservation,
  type Policy,
} from "@lanekeeper/shared";
import type {
  GitHubRunner,
  HostInventory,
  InventoryView,
  LaneRecord,
  ObservedState,
  RunnerReleaseObservation,
  ScopeObservation,
  StoredLaneRecord,
} from "@lanekeeper/coordinator";

/** A valid raw Ed25519/X25519-sized public key in base64 (32 bytes), distinct per `n`, for synthetic hosts. */
export function syntheticKey(n: number, salt: number): string {
  const b = Buffer.alloc(32);
  b.writeUInt32BE(n, 0);
  b.writeUInt32BE(salt, 4);
  return b.toString("base64");
}

/** A policy with defaults for everything the planner does not read. */
export function makePolicy(parts: Partial<Pick<Policy, "hosts" | "scopes" | "pools" | "lanes">> = {}): Policy {
  return {
    github: { apiUrl: "https://api.github.com", webUrl: "https://github.com", auth: { tokenEnv: "GITHUB_TOKEN" } },
    coordinator: {
      keyFile: "/etc/lanekeeper/coordinator.key",
      natsUrl: "nats://127.0.0.1:4222",
      natsServers: ["nats://127.0.0.1:4222"],
      jetstreamReplicas: 1,
      auditFile: "/var/lib/lanekeeper/audit.jsonl",
      intentTtlMs: 60_000,
      resultTimeoutMs: 30_000,
      verifyTimeoutMs: 120_000,
      applyConcurrency: 4,
      reconcileIntervalMs: 30_000,
      drain: { settleMs: 15_000, deadlineMs: 3_600_000, pollMs: 5000 },
    },
    hosts: parts.hosts ?? {},
    scopes: parts.scopes ?? {},
    pools: parts.pools ?? {},
    lanes: parts.lanes ?? [],
  };
}

/** A host entry for {@link makePolicy}. */
export function hostPolicy(n: number, optIn = true, capacity = 8): Policy["hosts"][string] {
  return { enrolled: { identityKey: syntheticKey(n, 1), sealingKey: syntheticKey(n, 2) }, optIn, capacity };
}

/** A lane observation with defaults: running, healthy, no job. */
export function laneObservation(p: Partial<LaneObservation> & Pick<LaneObservation, "laneId" | "scope" | "pool">): LaneObservation {
  return {
    backend: Backend.BACKEND_SYSTEMD,
    mode: LaneMode.LANE_MODE_PERSISTENT,
    runtimeName: `lanekeeper-lane-${p.laneId}.service`,
    state: LaneState.LANE_STATE_RUNNING,
    health: Health.HEALTH_HEALTHY,
    jobRunning: false,
    runnerId: 0,
    labels: [],
    held: false,
    holdReason: "",
    draining: false,
    restartsInWindow: 0,
    attentionReason: "",
    recoveryNote: "",
    runnerVersion: "2.330.0",
    image: "",
    stateSinceMs: 0,
    lastExitCode: 0,
    runnerName: "",
    ...p,
  };
}

/** A GitHub runner with custom labels. */
export function githubRunner(id: number, labels: readonly string[], p: Partial<GitHubRunner> = {}): GitHubRunner {
  return {
    id,
    name: `runner-${id}`,
    os: "Linux",
    status: "online",
    busy: false,
    labels: labels.map((name) => ({ name, type: "custom" as const })),
    ephemeral: false,
    runnerGroupId: 1,
    ...p,
  };
}

/** A host inventory with defaults (control enabled, allowlist unknown). */
export function hostInventory(hostId: string, receivedAtMs: number, lanes: readonly LaneObservation[], p: Partial<HostInventory> = {}): HostInventory {
  return {
    hostId,
    takenAtMs: receivedAtMs,
    receivedAtMs,
    agentVersion: "0.1.0",
    controlEnabled: true,
    allowlist: undefined,
    lanes,
    unmanaged: [],
    ...p,
  };
}

/** A lane record of acme/api, pool linux-x64, on build01, being created at t=1 (override what a test needs). */
export function laneRecord(laneId: string, over: Partial<LaneRecord> = {}): LaneRecord {
  return { laneId, scope: "acme/api", pool: "linux-x64", hostId: "build01", state: "creating", createdAtMs: 1, updatedAtMs: 1, ...over };
}

/** Stored records from plain ones (revision = position + 1). */
export function storedRecords(records: readonly LaneRecord[]): StoredLaneRecord[] {
  return records.map((r, i) => ({ ...r, revision: i + 1 }));
}

/** Inputs of one plan. */
export interface PlanInputs {
  readonly policy: Policy;
  readonly observed: ObservedState;
  readonly records: readonly StoredLaneRecord[];
  readonly nowMs: number;
}

/** Sizes of a {@link steadyState} fleet. */
export interface SteadyStateSize {
  readonly lanes: number;
  readonly scopes: number;
  readonly hosts: number;
  /** Give every host an inventory (otherwise none is known). @default true */
  readonly inventories?: boolean;
}

/**
 * A converged fleet: the policy wants exactly the lanes that exist, each with a record, an online
 * registration carrying its canonical labels, and a running host lane. A correct planner plans nothing here.
 */
export function steadyState(size: SteadyStateSize, nowMs = 1_800_000_000_000): PlanInputs {
  const hostIds = Array.from({ length: size.hosts }, (_, i) => `host${String(i).padStart(3, "0")}`);
  const scopes = Array.from({ length: size.scopes }, (_, i) => `acme/repo${String(i).padStart(3, "0")}`);
  const perScope = Math.ceil(size.lanes / size.scopes);
  // Each scope uses half of the hosts, so a host may carry twice the average.
  const capacity = Math.ceil((2 * size.lanes) / size.hosts) + 2;
  const policy = makePolicy({
    hosts: Object.fromEntries(hostIds.map((h, i) => [h, hostPolicy(i, true, capacity)])),
    scopes: Object.fromEntries(scopes.map((s) => [s, { optIn: true }])),
    pools: { "linux-x64": { labels: ["linux", "x64"], backend: "systemd", mode: "persistent", runnerVersion: "2.330.0" } },
    lanes: [],
  });
  const records: StoredLaneRecord[] = [];
  const runnersByScope = new Map<string, GitHubRunner[]>(scopes.map((s) => [s, []]));
  const lanesByHost = new Map<string, LaneObservation[]>(hostIds.map((h) => [h, []]));
  let n = 0;
  for (const [si, scope] of scopes.entries()) {
    const count = Math.min(perScope, size.lanes - si * perScope);
    if (count <= 0) break;
    const hosts = hostIds.filter((_, hi) => (hi + si) % 2 === 0 || size.hosts < 4);
    policy.lanes.push({ scope, pool: "linux-x64", count, hosts });
    for (let k = 0; k < count; k++) {
      const laneId = `linux-x64-${(n + 1).toString(16).padStart(6, "0")}`;
      const hostId = hosts[(k + si) % hosts.length] ?? hostIds[0] ?? "host000";
      const runnerId = 1000 + n;
      records.push({
        laneId,
        scope,
        pool: "linux-x64",
        hostId,
        runnerId,
        state: "active",
        createdAtMs: nowMs - 86_400_000,
        updatedAtMs: nowMs - 86_400_000,
        revision: n + 1,
      });
      const labels = canonicalLabels({ laneId, hostId, pool: "linux-x64", capabilityLabels: ["linux", "x64"] });
      runnersByScope.get(scope)?.push(githubRunner(runnerId, labels, { name: `${hostId}-${laneId}` }));
      lanesByHost.get(hostId)?.push(laneObservation({ laneId, scope, pool: "linux-x64", runnerId, labels, stateSinceMs: nowMs - 86_400_000 }));
      n++;
    }
  }
  const scopeObs = new Map<string, ScopeObservation>(
    scopes.map((s) => [s, { scope: s, status: "ok", runners: runnersByScope.get(s) ?? [], complete: true, observedAtMs: nowMs }]),
  );
  const inventory: InventoryView = {
    hosts: new Map(
      size.inventories === false ? [] : hostIds.map((h) => [h, hostInventory(h, nowMs - 1000, lanesByHost.get(h) ?? [])]),
    ),
  };
  return { policy, observed: { scopes: scopeObs, inventory }, records, nowMs };
}

/** One lane of a {@link buildInputs} fleet; each marker defaults to present and agreeing, `false` omits it. */
export interface LaneFixture {
  readonly laneId: string;
  readonly scope: string;
  readonly pool: string;
  readonly hostId: string;
  readonly record?: Partial<LaneRecord> | false;
  /** `labels` replaces the canonical labels (custom type). */
  readonly registration?: (Partial<Omit<GitHubRunner, "labels">> & { readonly labels?: readonly string[] }) | false;
  readonly hostLane?: Partial<LaneObservation> | false;
}

/** Extra inputs of {@link buildInputs}. */
export interface FleetExtras {
  readonly nowMs?: number;
  /** Runners that belong to no lane fixture (unmanaged, foreign, ...). */
  readonly runners?: readonly { readonly scope: string; readonly runner: GitHubRunner }[];
  /** Hosts with an inventory; default: every host of the policy. */
  readonly knownHosts?: readonly string[];
  /** Per-host inventory overrides (control, allowlist, age). */
  readonly inventory?: Readonly<Record<string, Partial<HostInventory>>>;
  /** Per-scope observation overrides (unavailable, incomplete). */
  readonly scopes?: Readonly<Record<string, ScopeObservation>>;
  /** GitHub's current runner release (what `runnerVersion: latest` resolves to). */
  readonly runnerReleases?: RunnerReleaseObservation;
}

/**
 * Plan inputs from lane fixtures: records, registrations (ids from 5000 up, canonical labels) and host lanes
 * that agree unless a fixture says otherwise. Every scope of the policy and of the fixtures is observed.
 */
export function buildInputs(policy: Policy, lanes: readonly LaneFixture[], extras: FleetExtras = {}): PlanInputs {
  const nowMs = extras.nowMs ?? 1_800_000_000_000;
  const records: LaneRecord[] = [];
  const runners = new Map<string, GitHubRunner[]>();
  const hostLanes = new Map<string, LaneObservation[]>();
  const addRunner = (scope: string, r: GitHubRunner): void => {
    const list = runners.get(scope) ?? [];
    list.push(r);
    runners.set(scope, list);
  };
  let nextId = 5000;
  for (const f of lanes) {
    const runnerId = f.registration === false ? undefined : (f.registration?.id ?? nextId++);
    if (f.record !== false) {
      records.push({
        laneId: f.laneId,
        scope: f.scope,
        pool: f.pool,
        hostId: f.hostId,
        ...(runnerId === undefined ? {} : { runnerId }),
        state: "active",
        createdAtMs: nowMs - 86_400_000,
        updatedAtMs: nowMs - 86_400_000,
        ...(f.record ?? {}),
      });
    }
    const capability = Object.hasOwn(policy.pools, f.pool) ? (policy.pools[f.pool]?.labels ?? []) : [];
    const labels = canonicalLabels({ laneId: f.laneId, hostId: f.hostId, pool: f.pool, capabilityLabels: capability });
    if (f.registration !== false && runnerId !== undefined) {
      const { labels: l, ...rest } = f.registration ?? {};
      addRunner(f.scope, githubRunner(runnerId, l ?? labels, { name: `${f.hostId}-${f.laneId}`, ...rest }));
    }
    if (f.hostLane !== false) {
      const list = hostLanes.get(f.hostId) ?? [];
      list.push(
        laneObservation({ laneId: f.laneId, scope: f.scope, pool: f.pool, runnerId: runnerId ?? 0, labels, stateSinceMs: nowMs - 86_400_000, ...(f.hostLane ?? {}) }),
      );
      hostLanes.set(f.hostId, list);
    }
  }
  for (const { scope, runner } of extras.runners ?? []) addRunner(scope, runner);
  const scopeNames = new Set([...Object.keys(policy.scopes), ...lanes.map((l) => l.scope), ...runners.keys()]);
  const scopes = new Map<string, ScopeObservation>();
  for (const s of [...scopeNames].sort()) {
    scopes.set(s, extras.scopes?.[s] ?? { scope: s, status: "ok", runners: runners.get(s) ?? [], complete: true, observedAtMs: nowMs });
  }
  const known = extras.knownHosts ?? Object.keys(policy.hosts);
  const inventory: InventoryView = {
    hosts: new Map(known.map((h) => [h, hostInventory(h, nowMs - 1000, hostLanes.get(h) ?? [], extras.inventory?.[h] ?? {})])),
  };
  const observed: ObservedState = { scopes, inventory, ...(extras.runnerReleases === undefined ? {} : { runnerReleases: extras.runnerReleases }) };
  return { policy, observed, records: storedRecords(records), nowMs };
}
