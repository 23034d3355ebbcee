import { parseScope, type ActionKind, type Policy, type PoolPolicy } from "@lanekeeper/shared";
import type { HostInventory } from "../observe/inventory-view.js";
import { agentPermits } from "../plan/placement.js";
import { SmokeRefusedError } from "./smoke-errors.js";

/** What `lanekeeper smoke` was asked for, before any check. */
export interface SmokeRequest {
  /** `repo:<owner>/<name>`, `org:<org>`, or a policy scope as written (`owner/name`). */
  readonly scope: string;
  readonly hostId: string;
  readonly pool?: string | undefined;
  readonly runtime?: "systemd" | "container" | undefined;
  /** Workflow file name or id to dispatch (optional). */
  readonly workflow?: string | undefined;
  readonly ref?: string | undefined;
  /** The repository of the workflow; required for an organization scope, else the scope's repository. */
  readonly workflowRepo?: string | undefined;
}

/** The checked request: policy scope, pool and the agent's limits. */
export interface SmokeTarget {
  readonly scope: string;
  readonly hostId: string;
  readonly pool: string;
  readonly poolPolicy: PoolPolicy;
  /** Most lanes the host may hold: the smaller of the policy capacity and the agent's `maxLanes`. */
  readonly maxLanes: number;
  readonly workflow?: { readonly repo: string; readonly workflow: string; readonly ref: string };
}

/** Intents a smoke run sends: create, drain, restart (undrain restores it), remove. */
export const SMOKE_ACTIONS: readonly ActionKind[] = Object.freeze(["create", "drain", "restart", "undrain", "remove"]);

/** The policy scope of `--scope`: `repo:o/n` → `o/n`, `org:x` and `o/n` as they are. */
export function policyScope(raw: string): string {
  const scope = raw.startsWith("repo:") ? raw.slice("repo:".length) : raw;
  try {
    parseScope(scope);
  } catch (err) {
    throw new SmokeRefusedError("SMOKE_OPTIONS_INVALID", `--scope ${JSON.stringify(raw)}: ${(err as Error).message}`, "use --scope repo:<owner>/<name> or --scope org:<org>");
  }
  return scope;
}

/**
 * The coordinator side of the opt-in (DESIGN.md section 8, invariant 3), checked before anything is done: the scope
 * and the host must be opted in in the policy, the pool declared (and of the asked runtime), a workflow named with
 * its ref. Pure; throws {@link SmokeRefusedError} naming the key to set.
 */
export function checkPolicySide(policy: Policy, policyFile: string, req: SmokeRequest): Omit<SmokeTarget, "maxLanes" | "pool" | "poolPolicy"> & { readonly pools: readonly string[] } {
  const scope = policyScope(req.scope);
  const s = Object.hasOwn(policy.scopes, scope) ? policy.scopes[scope] : undefined;
  if (s?.optIn !== true) {
    throw new SmokeRefusedError(
      "SMOKE_SCOPE_NOT_OPTED_IN",
      `scope ${scope} is not opted in on the coordinator (scopes.${scope}.optIn in ${policyFile})`,
      `opt in a disposable repository first: set scopes."${scope}".optIn: true in ${policyFile} (docs/first-contact.md)`,
    );
  }
  const h = Object.hasOwn(policy.hosts, req.hostId) ? policy.hosts[req.hostId] : undefined;
  if (h === undefined) {
    throw new SmokeRefusedError("SMOKE_HOST_NOT_OPTED_IN", `host ${req.hostId} is not enrolled in ${policyFile}`, "enroll it with `lanekeeper hosts add <bundle-file> --opt-in`");
  }
  if (!h.optIn) {
    throw new SmokeRefusedError("SMOKE_HOST_NOT_OPTED_IN", `host ${req.hostId} is enrolled but not opted in (hosts.${req.hostId}.optIn in ${policyFile})`, `set hosts.${req.hostId}.optIn: true in ${policyFile}`);
  }
  let pools = Object.keys(policy.pools).sort();
  if (req.pool !== undefined) {
    if (!pools.includes(req.pool)) throw new SmokeRefusedError("SMOKE_OPTIONS_INVALID", `pool ${req.pool} is not declared under pools in ${policyFile}`, `pick one of: ${pools.join(", ") || "(none)"}`);
    pools = [req.pool];
  }
  if (req.runtime !== undefined) pools = pools.filter((p) => policy.pools[p]?.backend === req.runtime);
  if (pools.length === 0) {
    throw new SmokeRefusedError("SMOKE_OPTIONS_INVALID", `no pool${req.pool === undefined ? "" : ` ${req.pool}`} with backend ${req.runtime ?? "?"} in ${policyFile}`, "declare one under pools, or pick another --runtime");
  }
  let workflow: SmokeTarget["workflow"];
  if (req.workflow !== undefined) {
    if (req.ref === undefined || req.ref === "") throw new SmokeRefusedError("SMOKE_OPTIONS_INVALID", "--workflow needs --ref (the branch or tag to run it on)", "add --ref main (or the ref the workflow file is on)");
    const parsed = parseScope(scope);
    const repo = req.workflowRepo ?? (parsed.kind === "repo" ? scope : undefined);
    if (repo === undefined) throw new SmokeRefusedError("SMOKE_OPTIONS_INVALID", `scope ${scope} is an organization: name the workflow's repository`, "add --workflow-repo <owner>/<name>");
    workflow = { repo, workflow: req.workflow, ref: req.ref };
  } else if (req.ref !== undefined || req.workflowRepo !== undefined) {
    throw new SmokeRefusedError("SMOKE_OPTIONS_INVALID", "--ref and --workflow-repo only go with --workflow", "add --workflow <file>, or leave them out");
  }
  return { scope, hostId: req.hostId, pools, ...(workflow === undefined ? {} : { workflow }) };
}

/**
 * The agent side of the opt-in, from the host's fresh signed inventory: control enabled, and its allowlist takes
 * the scope, a candidate pool and its backend (image) for every action a smoke run sends, with room for one more
 * lane. Returns the first pool that qualifies.
 */
export function checkAgentSide(policy: Policy, inv: HostInventory, side: ReturnType<typeof checkPolicySide>): SmokeTarget {
  if (!inv.controlEnabled) {
    throw new SmokeRefusedError(
      "SMOKE_HOST_NOT_ALLOWED",
      `the agent on ${side.hostId} has control.enabled: false (it only observes)`,
      `on ${side.hostId}, set control.enabled: true and allow the scope, pool and backend in /etc/lanekeeper/agent.yaml, then restart lanekeeper-agent`,
    );
  }
  const why: string[] = [];
  for (const pool of side.pools) {
    const p = policy.pools[pool];
    if (p === undefined) continue;
    const req = { scope: side.scope, pool, backend: p.backend, image: p.backend === "container" ? p.image : undefined };
    const refusal = SMOKE_ACTIONS.map((a) => agentPermits(inv, a, req)).find((e) => !e.ok);
    if (refusal !== undefined && !refusal.ok) {
      why.push(`${pool}: ${refusal.detail}`);
      continue;
    }
    const capacity = policy.hosts[side.hostId]?.capacity ?? 0;
    const maxLanes = Math.min(capacity, inv.allowlist?.maxLanes ?? capacity);
    if (inv.lanes.length >= maxLanes) {
      throw new SmokeRefusedError(
        "SMOKE_HOST_FULL",
        `host ${side.hostId} holds ${inv.lanes.length} lanes, its limit is ${maxLanes} (hosts.${side.hostId}.capacity, control.maxLanes)`,
        "raise the capacity by one for the smoke run, or pick another host",
      );
    }
    return { scope: side.scope, hostId: side.hostId, pool, poolPolicy: p, maxLanes, ...(side.workflow === undefined ? {} : { workflow: side.workflow }) };
  }
  throw new SmokeRefusedError(
    "SMOKE_HOST_NOT_ALLOWED",
    `the agent on ${side.hostId} does not allow a smoke lane: ${why.join("; ")}`,
    `on ${side.hostId}, add the scope, pool and backend (and actions ${SMOKE_ACTIONS.join(", ")}) to control in /etc/lanekeeper/agent.yaml, then restart lanekeeper-agent`,
  );
}
