import { parseScope, type Policy } from "@lanekeeper/shared";

/** Whether a lane entry sizes itself from demand (`scaling`) rather than a fixed `count`. */
export function laneUsesScaling(lane: Policy["lanes"][number]): boolean {
  // Read structurally: the `scaling` block is the planner's part of the policy.
  const s = (lane as { readonly scaling?: unknown }).scaling;
  return s !== undefined && s !== null;
}

/** Whether any lane entry uses `scaling`: only then is demand observed at all. */
export function policyUsesScaling(policy: Policy): boolean {
  return policy.lanes.some(laneUsesScaling);
}

/** Scopes whose workflow jobs are tracked (stored and reconciled): those of lane entries that use `scaling`. */
export function demandScopes(policy: Policy): string[] {
  return [...new Set(policy.lanes.filter(laneUsesScaling).map((l) => l.scope))].sort();
}

/** Scopes of every lane entry: a job event there may re-arm an ephemeral lane, whatever sizes the pool. */
export function laneScopes(policy: Policy): string[] {
  return [...new Set(policy.lanes.map((l) => l.scope))].sort();
}

/**
 * The scope a job of `repository` (`owner/repo`, as GitHub spells it) belongs to among `scopes`: the repository's
 * own scope when listed, else its organization's (`org:<owner>`). GitHub names are case-insensitive, so the
 * comparison is too; the answer is the policy's spelling. `undefined`: not a managed scope.
 */
export function scopeOfRepository(repository: string, scopes: readonly string[]): string | undefined {
  const repo = repository.toLowerCase();
  const owner = repo.split("/")[0] ?? "";
  let org: string | undefined;
  for (const s of scopes) {
    const p = parseScope(s);
    if (p.kind === "repo" && `${p.owner}/${p.repo}`.toLowerCase() === repo) return s;
    if (p.kind === "org" && p.org.toLowerCase() === owner) org = s;
  }
  return org;
}
