/**
 * Cross-field rules of the coordinator policy (what a schema cannot say): see {@link policyCrossCheck}.
 */
import { formatConfigPath } from "./config-loader.js";
import { type ConfigIssue, LanekeeperError } from "./errors.js";
import { keyIdOf, parseSealingPublicKey, parseSigningPublicKey } from "./keys.js";
import { parseScope } from "./names.js";
import type { Policy, ScalingPolicy } from "./policy-model.js";
import { parseDurationString } from "./scaling-schedule.js";

function keyProblem(err: unknown): string {
  return err instanceof LanekeeperError ? err.message : "cannot be parsed";
}

/**
 * The policy's cross-field rules, checked after the schema: both sides of the opt-in, keys that parse and are not
 * shared, pools complete for their backend, lanes that fit their hosts' capacity. Every problem as `path: message`.
 */
export function policyCrossCheck(p: Policy): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const at = (...path: (string | number)[]): string => formatConfigPath(path);

  if (p.coordinator.natsCredsFile !== undefined && p.coordinator.natsUser !== undefined) {
    issues.push({ path: at("coordinator", "natsCredsFile"), message: "use either natsCredsFile or natsUser/natsPasswordEnv, not both" });
  }
  if ((p.coordinator.natsUser === undefined) !== (p.coordinator.natsPasswordEnv === undefined)) {
    issues.push({ path: at("coordinator", "natsUser"), message: "natsUser and natsPasswordEnv go together" });
  }

  const identityOwners = new Map<string, string>();
  for (const [hostId, h] of Object.entries(p.hosts)) {
    try {
      const raw = parseSigningPublicKey(h.enrolled.identityKey);
      const keyId = keyIdOf(raw);
      const other = identityOwners.get(keyId);
      if (other !== undefined) {
        issues.push({ path: at("hosts", hostId, "enrolled", "identityKey"), message: `same identity key as host ${other}; each host has its own` });
      }
      identityOwners.set(keyId, hostId);
    } catch (err) {
      issues.push({ path: at("hosts", hostId, "enrolled", "identityKey"), message: keyProblem(err) });
    }
    try {
      parseSealingPublicKey(h.enrolled.sealingKey);
    } catch (err) {
      issues.push({ path: at("hosts", hostId, "enrolled", "sealingKey"), message: keyProblem(err) });
    }
  }

  for (const [scope, s] of Object.entries(p.scopes)) {
    if (s.runnerGroup !== undefined && parseScope(scope).kind !== "org") {
      issues.push({ path: at("scopes", scope, "runnerGroup"), message: "runner groups apply to organization scopes (org:<org>) only" });
    }
  }

  for (const [name, pool] of Object.entries(p.pools)) {
    if (pool.backend === "systemd") {
      if (pool.runnerVersion === undefined) {
        issues.push({ path: at("pools", name, "runnerVersion"), message: "systemd pools need a runnerVersion, e.g. 2.330.0 or latest" });
      }
      if (pool.image !== undefined) issues.push({ path: at("pools", name, "image"), message: "image applies to container pools only" });
    } else {
      if (pool.image === undefined) {
        issues.push({ path: at("pools", name, "image"), message: "container pools need an image pinned by digest (name@sha256:<64 hex>)" });
      }
      if (pool.runnerVersion !== undefined) {
        issues.push({ path: at("pools", name, "runnerVersion"), message: "runnerVersion applies to systemd pools only (the image pins the runner)" });
      }
    }
    const window = pool.upgrade?.window;
    if (window !== undefined && parseDurationString(window.duration) === 0) {
      issues.push({ path: at("pools", name, "upgrade", "window", "duration"), message: "must be longer than 0" });
    }
  }

  const seenLanes = new Map<string, number>();
  p.lanes.forEach((lane, i) => {
    const key = `${lane.scope}\u0000${lane.pool}`;
    const first = seenLanes.get(key);
    if (first !== undefined) {
      issues.push({ path: at("lanes", i), message: `lanes[${first}] already declares scope ${lane.scope} with pool ${lane.pool}; merge them` });
    }
    seenLanes.set(key, i);

    const scope = p.scopes[lane.scope];
    if (!Object.hasOwn(p.scopes, lane.scope) || scope === undefined) {
      issues.push({ path: at("lanes", i, "scope"), message: `scope "${lane.scope}" is not declared under scopes` });
    } else if (!scope.optIn) {
      issues.push({
        path: at("lanes", i, "scope"),
        message: `scope "${lane.scope}" has not opted in; set ${at("scopes", lane.scope, "optIn")}: true to let lanes register there`,
      });
    }
    if (!Object.hasOwn(p.pools, lane.pool)) {
      issues.push({ path: at("lanes", i, "pool"), message: `pool "${lane.pool}" is not declared under pools` });
    }
    let capacity = 0;
    lane.hosts.forEach((hostId, j) => {
      const host = p.hosts[hostId];
      if (!Object.hasOwn(p.hosts, hostId) || host === undefined) {
        issues.push({ path: at("lanes", i, "hosts", j), message: `host "${hostId}" is not enrolled under hosts` });
      } else if (!host.optIn) {
        issues.push({
          path: at("lanes", i, "hosts", j),
          message: `host "${hostId}" has not opted in; set ${at("hosts", hostId, "optIn")}: true to let lanes use it`,
        });
      } else {
        capacity += host.capacity;
      }
    });
    if ((lane.count === undefined) === (lane.scaling === undefined)) {
      issues.push({
        path: at("lanes", i),
        message: lane.count === undefined ? "set either count (a fixed number of lanes) or scaling (min/max lanes following the job queue)" : "set count or scaling, not both",
      });
    }
    if (lane.count !== undefined && lane.count > capacity) {
      issues.push({
        path: at("lanes", i, "count"),
        message: `${lane.count} lanes do not fit: the listed opted-in hosts have a total capacity of ${capacity}`,
      });
    }
    if (lane.scaling !== undefined) issues.push(...scalingIssues(lane.scaling, capacity, (...rest) => at("lanes", i, "scaling", ...rest)));
  });
  return issues;
}

function scalingIssues(s: ScalingPolicy, capacity: number, at: (...path: (string | number)[]) => string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (s.max < s.min) issues.push({ path: at("max"), message: `max (${s.max}) is below min (${s.min})` });
  if (s.max > capacity) {
    issues.push({ path: at("max"), message: `${s.max} lanes do not fit: the listed opted-in hosts have a total capacity of ${capacity}` });
  }
  if (s.idle > s.max) issues.push({ path: at("idle"), message: `idle (${s.idle}) is above max (${s.max}): at most max lanes ever exist` });
  const names = new Map<string, number>();
  s.schedules.forEach((w, j) => {
    const first = names.get(w.name);
    if (first !== undefined) issues.push({ path: at("schedules", j, "name"), message: `schedules[${first}] has the same name` });
    names.set(w.name, j);
    if (w.min > s.max) issues.push({ path: at("schedules", j, "min"), message: `min (${w.min}) is above the group's max (${s.max})` });
    if (w.idle !== undefined && w.idle > s.max) {
      issues.push({ path: at("schedules", j, "idle"), message: `idle (${w.idle}) is above the group's max (${s.max})` });
    }
    if (parseDurationString(w.duration) === 0) issues.push({ path: at("schedules", j, "duration"), message: "must be longer than 0" });
  });
  return issues;
}
