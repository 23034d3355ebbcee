/**
 * The shape of a simulated fleet, as pure functions: host ids, scopes, which hosts serve which scope, the desired
 * lanes, and the coordinator policy over them. Same numbers, same layout.
 */
import type { SimEnrollment } from "./sim-host.js";

/** The simulation's one pool (persistent lanes: one registration token per scope, reused). */
export const SIM_POOL = "sim-linux";
/** The runner version the pool pins (the emulator publishes it). */
export const SIM_RUNNER_VERSION = "2.336.0";

/** How big a fleet to simulate. */
export interface SimFleetSize {
  readonly hosts: number;
  readonly lanes: number;
  readonly scopes: number;
}

/** One `lanes:` entry of the policy. */
export interface SimLaneEntry {
  readonly scope: string;
  readonly pool: string;
  readonly count: number;
  readonly hosts: readonly string[];
}

/** The fleet laid out. */
export interface SimFleetLayout {
  readonly hostIds: readonly string[];
  /** Repositories (`owner/name`), the scopes of the policy. */
  readonly scopes: readonly string[];
  readonly lanes: readonly SimLaneEntry[];
  /** The scopes each host serves (its local allowlist). */
  readonly hostScopes: ReadonlyMap<string, readonly string[]>;
  /** Policy capacity and agent `maxLanes` of every host: twice the even share, so placement has room. */
  readonly capacity: number;
}

const pad = (n: number, width: number): string => String(n).padStart(width, "0");

/**
 * Lay the fleet out: `lanes` spread evenly over `scopes`; each scope's lanes go to a window of consecutive hosts
 * (as wide as its lane count), windows placed one after another around the host list, so every host serves
 * about `lanes / hosts` lanes of `lanes / hosts` different scopes.
 */
export function layoutSimFleet(size: SimFleetSize): SimFleetLayout {
  const { hosts, lanes, scopes } = size;
  if (!(hosts >= 1 && scopes >= 1 && lanes >= scopes)) throw new Error(`a simulated fleet needs hosts >= 1, scopes >= 1 and lanes >= scopes (got ${hosts}, ${scopes}, ${lanes})`);
  const hw = Math.max(4, String(hosts).length);
  const sw = Math.max(3, String(scopes).length);
  const hostIds = Array.from({ length: hosts }, (_, i) => `sim-${pad(i + 1, hw)}`);
  // 25 repositories per owner, as organisations with many repositories have.
  const scopeNames = Array.from({ length: scopes }, (_, i) => `sim-owner-${pad(Math.floor(i / 25) + 1, 2)}/repo-${pad(i + 1, sw)}`);
  const hostScopes = new Map<string, string[]>(hostIds.map((h) => [h, []]));
  const entries: SimLaneEntry[] = [];
  let cursor = 0;
  for (let i = 0; i < scopes; i++) {
    const count = Math.floor(lanes / scopes) + (i < lanes % scopes ? 1 : 0);
    const width = Math.min(hosts, count);
    const window = Array.from({ length: width }, (_, k) => hostIds[(cursor + k) % hosts] as string);
    cursor = (cursor + width) % hosts;
    const scope = scopeNames[i] as string;
    for (const h of window) hostScopes.get(h)?.push(scope);
    entries.push({ scope, pool: SIM_POOL, count, hosts: window });
  }
  return { hostIds, scopes: scopeNames, lanes: entries, hostScopes, capacity: 2 * Math.ceil(lanes / hosts) + 2 };
}

/** Where the coordinator finds GitHub, NATS, its key and its audit file. */
export interface SimPolicyEndpoints {
  readonly githubApiUrl: string;
  readonly githubWebUrl: string;
  readonly githubTokenEnv: string;
  readonly natsUrl: string;
  readonly natsUser: string;
  readonly natsPasswordEnv: string;
  readonly keyFile: string;
  readonly auditFile: string;
  /** @default 4 (the policy's) */
  readonly applyConcurrency?: number;
  /** @default 30000 (the policy's) */
  readonly reconcileIntervalMs?: number;
}

/** The coordinator policy of the simulated fleet (JSON text, which `lanekeeper` reads as YAML). */
export function simPolicyText(layout: SimFleetLayout, enrollments: readonly SimEnrollment[], e: SimPolicyEndpoints): string {
  const policy = {
    github: { apiUrl: e.githubApiUrl, webUrl: e.githubWebUrl, auth: { tokenEnv: e.githubTokenEnv } },
    coordinator: {
      keyFile: e.keyFile,
      natsUrl: e.natsUrl,
      natsUser: e.natsUser,
      natsPasswordEnv: e.natsPasswordEnv,
      auditFile: e.auditFile,
      resultTimeoutMs: 120_000,
      ...(e.applyConcurrency === undefined ? {} : { applyConcurrency: e.applyConcurrency }),
      ...(e.reconcileIntervalMs === undefined ? {} : { reconcileIntervalMs: e.reconcileIntervalMs }),
    },
    hosts: Object.fromEntries(
      enrollments.map((en) => [en.hostId, { enrolled: { identityKey: en.identityKey, sealingKey: en.sealingKey }, optIn: true, capacity: layout.capacity }]),
    ),
    scopes: Object.fromEntries(layout.scopes.map((s) => [s, { optIn: true }])),
    pools: { [SIM_POOL]: { backend: "systemd", mode: "persistent", runnerVersion: SIM_RUNNER_VERSION, labels: ["linux", "x64", "sim"] } },
    lanes: layout.lanes.map((l) => ({ scope: l.scope, pool: l.pool, count: l.count, hosts: [...l.hosts] })),
  };
  return JSON.stringify(policy, null, 1);
}
