/**
 * Scopes (repositories, organizations), runner groups, runner registrations, labels, and registration /
 * remove tokens. Errors GitHub would show are thrown as {@link HttpError}s with GitHub's status and body.
 */
import { randomBytes } from "node:crypto";
import { basicError, validationError } from "./errors.js";
import type { Clock } from "./options.js";
import {
  hashSecret,
  scopeKey,
  type EmulatorState,
  type GroupRecord,
  type LabelRecord,
  type OrgRecord,
  type RepoRecord,
  type RunnerRecord,
  type RunnerTokenRecord,
  type ScopeKey,
} from "./state.js";

/** A resolved repository or organization scope. */
export type ScopeRef =
  | { kind: "repo"; key: ScopeKey; repo: RepoRecord; org: OrgRecord | undefined }
  | { kind: "org"; key: ScopeKey; org: OrgRecord };

/** What the runner protocol and `generate-jitconfig` ask for. */
export interface RegistrationRequest {
  scope: ScopeRef;
  name: string;
  customLabels: readonly string[];
  /** Apply the read-only defaults `self-hosted`, `Linux`, `<arch>`. */
  defaultLabels: boolean;
  groupId: number;
  ephemeral: boolean;
  /** Reuse an existing registration of the same name (`config.sh --replace`). */
  replace: boolean;
  workFolder: string;
  /** `unknown` until a session reports the real OS. */
  os: string;
}

/** Callbacks the job broker and the persistence layer plug in. */
export interface RegistryHooks {
  /** A registration was deleted, or replaced (its old sessions and credential are void). */
  runnerGone(runner: RunnerRecord, why: "deleted" | "replaced"): void;
  /** Something persisted changed. */
  changed(): void;
}

const TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** A 29-character upper-case alphanumeric token, the shape of GitHub's registration tokens. */
function runnerTokenString(): string {
  const bytes = randomBytes(29);
  let out = "";
  for (const b of bytes) out += TOKEN_ALPHABET[b % TOKEN_ALPHABET.length];
  return out;
}

/** The architecture label the real runner applies on this machine. */
function archLabel(): string {
  switch (process.arch) {
    case "arm64":
      return "ARM64";
    case "arm":
      return "ARM";
    case "ia32":
      return "X86";
    default:
      return "X64";
  }
}

/** Returns why a list of label names is unacceptable, or undefined. */
export function labelNamesProblem(names: unknown, min: number, max: number): string | undefined {
  if (!Array.isArray(names)) return "labels must be an array of strings";
  if (names.length < min) return `For 'properties/labels', ${JSON.stringify(names)} has fewer items than ${min}.`;
  if (names.length > max) return `For 'properties/labels', the array has more items than ${max}.`;
  for (const n of names) {
    if (typeof n !== "string" || n.trim() === "") return `For 'items', ${JSON.stringify(n)} is not a non-empty string.`;
    if (n.includes(",")) return `Label ${JSON.stringify(n)} may not contain a comma.`;
  }
  return undefined;
}

/** The registry of scopes, groups, runners and tokens. */
export class Registry {
  /** See `scopeIndex`. */
  private byScope: Map<ScopeKey, Map<number, RunnerRecord>> | undefined;
  private indexedRunners = -1;

  constructor(
    private readonly state: EmulatorState,
    private readonly clock: Clock,
    private readonly tokenTtlMs: () => number,
    private readonly hooks: RegistryHooks,
  ) {}

  // ---- scopes -------------------------------------------------------------------------------------

  /** Serves `owner/name` (idempotent). */
  addRepo(owner: string, name: string): RepoRecord {
    const key = scopeKey.repo(owner, name);
    let repo = this.state.repos.get(key);
    if (!repo) {
      repo = { id: 1000 + this.state.next("repo"), owner, name, runNumber: 0 };
      this.state.repos.set(key, repo);
      this.hooks.changed();
    }
    return repo;
  }

  /** Serves an organization with its "Default" group, id 1 (idempotent). */
  addOrg(login: string): OrgRecord {
    const key = scopeKey.org(login);
    let org = this.state.orgs.get(key);
    if (!org) {
      org = { id: 500 + this.state.next("org"), login, groups: [] };
      org.groups.push(defaultGroup());
      this.state.orgs.set(key, org);
      this.hooks.changed();
    }
    return org;
  }

  /** The repository scope, or undefined if not served. */
  repoScope(owner: string, name: string): ScopeRef | undefined {
    const repo = this.state.repos.get(scopeKey.repo(owner, name));
    return repo ? { kind: "repo", key: scopeKey.repo(owner, name), repo, org: this.orgOf(repo) } : undefined;
  }

  /** The organization scope, or undefined if not served. */
  orgScope(login: string): ScopeRef | undefined {
    const org = this.state.orgs.get(scopeKey.org(login));
    return org ? { kind: "org", key: scopeKey.org(login), org } : undefined;
  }

  /** Resolves a scope key (of a runner or token). */
  scopeByKey(key: ScopeKey): ScopeRef | undefined {
    const [kind, rest = ""] = key.split(":", 2) as [string, string];
    if (kind === "org") return this.orgScope(rest);
    const [owner = "", name = ""] = rest.split("/");
    return this.repoScope(owner, name);
  }

  /** Resolves a web URL `…/<owner>/<repo>` or `…/<org>` (the runner's `--url`). */
  scopeFromUrl(url: string): ScopeRef | undefined {
    let parts: string[];
    try {
      parts = new URL(url).pathname.split("/").filter((p) => p !== "").map(decodeURIComponent);
    } catch {
      return undefined;
    }
    if (parts.length === 2) return this.repoScope(parts[0] as string, parts[1] as string);
    if (parts.length === 1) return this.orgScope(parts[0] as string);
    return undefined;
  }

  /** The served organization owning a repository, if any (its runners may serve the repository). */
  orgOf(repo: RepoRecord): OrgRecord | undefined {
    return this.state.orgs.get(scopeKey.org(repo.owner));
  }

  /** A repository by id. */
  repoById(id: number): RepoRecord | undefined {
    for (const repo of this.state.repos.values()) if (repo.id === id) return repo;
    return undefined;
  }

  // ---- groups -------------------------------------------------------------------------------------

  /** A group of an organization, or undefined. */
  group(org: OrgRecord, id: number): GroupRecord | undefined {
    return org.groups.find((g) => g.id === id);
  }

  /** A group by name (case-insensitive), or undefined. */
  groupByName(org: OrgRecord, name: string): GroupRecord | undefined {
    return org.groups.find((g) => g.name.toLowerCase() === name.toLowerCase());
  }

  /** The default group of a scope (an organization's group 1; a stand-in "Default" for a repository). */
  defaultGroupOf(scope: ScopeRef): GroupRecord {
    return (scope.kind === "org" ? this.group(scope.org, 1) : undefined) ?? defaultGroup();
  }

  /** The group a runner belongs to (repository runners are reported in a "Default" group 1). */
  groupOfRunner(runner: RunnerRecord): GroupRecord {
    const scope = this.scopeByKey(runner.scope);
    return (scope?.kind === "org" ? this.group(scope.org, runner.groupId) : undefined) ?? defaultGroup();
  }

  /** Creates a group; 409 if the name is taken. */
  createGroup(org: OrgRecord, fields: Partial<GroupRecord> & { name: string }, runnerIds: readonly number[]): GroupRecord {
    if (this.groupByName(org, fields.name)) throw basicError(409, `Runner group name ${JSON.stringify(fields.name)} is already taken.`);
    const group: GroupRecord = {
      ...defaultGroup(),
      isDefault: false,
      ...fields,
      id: this.state.next("group"),
    };
    org.groups.push(group);
    for (const id of runnerIds) this.moveRunnerToGroup(org, id, group.id);
    this.hooks.changed();
    return group;
  }

  /** Updates a group's fields; 409 if renamed onto another group's name. */
  updateGroup(org: OrgRecord, group: GroupRecord, fields: Partial<GroupRecord>): GroupRecord {
    if (fields.name !== undefined) {
      const other = this.groupByName(org, fields.name);
      if (other && other.id !== group.id) throw basicError(409, `Runner group name ${JSON.stringify(fields.name)} is already taken.`);
    }
    Object.assign(group, fields, { id: group.id, isDefault: group.isDefault });
    this.hooks.changed();
    return group;
  }

  /** Deletes a group; its runners return to the default group. The default group cannot be deleted. */
  deleteGroup(org: OrgRecord, group: GroupRecord): void {
    if (group.isDefault) throw validationError("The default runner group cannot be deleted.");
    for (const runner of this.runnersIn(scopeKey.org(org.login))) if (runner.groupId === group.id) runner.groupId = 1;
    org.groups = org.groups.filter((g) => g !== group);
    this.hooks.changed();
  }

  /** Puts an organization runner into a group; 404 if the runner is unknown in that organization. */
  moveRunnerToGroup(org: OrgRecord, runnerId: number, groupId: number): void {
    const runner = this.runner(scopeKey.org(org.login), runnerId);
    if (!runner) throw basicError(404, "Not Found");
    runner.groupId = groupId;
    this.hooks.changed();
  }

  // ---- runners ------------------------------------------------------------------------------------

  /** Runners of a scope, by id. */
  runnersIn(scope: ScopeKey): RunnerRecord[] {
    return [...(this.scopeIndex().get(scope)?.values() ?? [])].sort((a, b) => a.id - b.id);
  }

  /**
   * Runners by scope, kept up to date by `register` and `deleteRunner`: every listing, and every registration
   * (its name check), filtered all runners, which made a 20,000-runner fleet simulation quadratic. Rebuilt when
   * the state was replaced wholesale (restore at start: the counts disagree).
   */
  private scopeIndex(): Map<ScopeKey, Map<number, RunnerRecord>> {
    let index = this.byScope;
    if (index === undefined || this.indexedRunners !== this.state.runners.size) {
      index = new Map();
      for (const r of this.state.runners.values()) this.indexAdd(index, r);
      this.byScope = index;
      this.indexedRunners = this.state.runners.size;
    }
    return index;
  }

  private indexAdd(index: Map<ScopeKey, Map<number, RunnerRecord>>, r: RunnerRecord): void {
    let m = index.get(r.scope);
    if (m === undefined) index.set(r.scope, (m = new Map()));
    m.set(r.id, r);
  }

  /** A runner of a scope, or undefined. */
  runner(scope: ScopeKey, id: number): RunnerRecord | undefined {
    const runner = this.state.runners.get(id);
    return runner && runner.scope === scope ? runner : undefined;
  }

  /** A runner of a scope by name (case-insensitive), or undefined. */
  runnerByName(scope: ScopeKey, name: string): RunnerRecord | undefined {
    const lower = name.toLowerCase();
    return this.runnersIn(scope).find((r) => r.name.toLowerCase() === lower);
  }

  /**
   * The runner a credential belongs to. `known: true, runner: undefined` means the registration was deleted
   * (GitHub's "registration has been deleted"), `known: false` means the credential is bad.
   */
  runnerByCredential(credential: string): { known: boolean; runner: RunnerRecord | undefined } {
    const id = this.state.credentials.get(hashSecret(credential));
    return id === undefined ? { known: false, runner: undefined } : { known: true, runner: this.state.runners.get(id) };
  }

  /** Creates (or with `replace`, rewrites) a registration and returns it with its new credential. */
  register(req: RegistrationRequest): { runner: RunnerRecord; credential: string } {
    const existing = this.runnerByName(req.scope.key, req.name);
    if (existing && !req.replace) throw basicError(409, `A runner exists with the same name ${req.name}.`);
    const credential = randomBytes(32).toString("base64url");
    const labels = this.buildLabels(req.defaultLabels, req.customLabels);
    const now = this.clock.now();
    let runner: RunnerRecord;
    if (existing) {
      // `--replace` keeps the agent id but voids the old credential and sessions, and rewrites the labels.
      this.hooks.runnerGone(existing, "replaced");
      for (const [hash, id] of this.state.credentials) if (id === existing.id) this.state.credentials.delete(hash);
      runner = Object.assign(existing, {
        labels,
        ephemeral: req.ephemeral,
        groupId: req.groupId,
        workFolder: req.workFolder,
        os: req.os,
        credentialHash: hashSecret(credential),
      });
    } else {
      runner = {
        id: this.state.next("runner"),
        scope: req.scope.key,
        name: req.name,
        groupId: req.groupId,
        labels,
        ephemeral: req.ephemeral,
        os: req.os,
        version: null,
        credentialHash: hashSecret(credential),
        workFolder: req.workFolder,
        createdAt: now,
        lastSeenAt: null,
        jobId: null,
        assignedAt: null,
      };
      const index = this.scopeIndex();
      this.state.runners.set(runner.id, runner);
      this.indexAdd(index, runner);
      this.indexedRunners = this.state.runners.size;
    }
    this.state.credentials.set(runner.credentialHash, runner.id);
    this.hooks.changed();
    return { runner, credential };
  }

  /** Refuses to delete a runner that has a job, with GitHub's 422 body. */
  assertNotBusy(runner: RunnerRecord): void {
    if (runner.jobId !== null) throw validationError(`Bad request - Runner "${runner.name}" is still running a job"`);
  }

  /** Deletes a registration (its sessions end; its credential now gets 404). */
  deleteRunner(runner: RunnerRecord): void {
    const index = this.scopeIndex();
    if (!this.state.runners.delete(runner.id)) return;
    index.get(runner.scope)?.delete(runner.id);
    this.indexedRunners = this.state.runners.size;
    this.hooks.runnerGone(runner, "deleted");
    this.hooks.changed();
  }

  // ---- labels -------------------------------------------------------------------------------------

  private labelId(name: string): number {
    const key = name.toLowerCase();
    let id = this.state.labelIds.get(key);
    if (id === undefined) {
      id = this.state.next("label");
      this.state.labelIds.set(key, id);
    }
    return id;
  }

  private buildLabels(defaults: boolean, custom: readonly string[]): LabelRecord[] {
    const labels: LabelRecord[] = [];
    if (defaults) {
      for (const name of ["self-hosted", "Linux", archLabel()]) labels.push({ id: this.labelId(name), name, type: "read-only" });
    }
    return this.withCustom(labels, custom);
  }

  /** Adds custom labels, skipping names already present (labels are a case-insensitive set). */
  private withCustom(labels: LabelRecord[], custom: readonly string[]): LabelRecord[] {
    const seen = new Set(labels.map((l) => l.name.toLowerCase()));
    for (const raw of custom) {
      const name = raw.trim();
      if (seen.has(name.toLowerCase())) continue;
      seen.add(name.toLowerCase());
      labels.push({ id: this.labelId(name), name, type: "custom" });
    }
    return labels;
  }

  /** POST labels: adds custom labels; returns the full list. */
  addCustomLabels(runner: RunnerRecord, names: readonly string[]): LabelRecord[] {
    runner.labels = this.withCustom(runner.labels, names);
    this.hooks.changed();
    return runner.labels;
  }

  /** PUT labels: replaces all custom labels; returns the full list. */
  setCustomLabels(runner: RunnerRecord, names: readonly string[]): LabelRecord[] {
    runner.labels = this.withCustom(runner.labels.filter((l) => l.type === "read-only"), names);
    this.hooks.changed();
    return runner.labels;
  }

  /** DELETE labels/{name}: 404 if absent, 422 for a read-only label; returns the remaining labels. */
  removeLabel(runner: RunnerRecord, name: string): LabelRecord[] {
    const label = runner.labels.find((l) => l.name.toLowerCase() === name.toLowerCase());
    if (!label) throw basicError(404, "Not Found");
    if (label.type === "read-only") throw validationError(`Cannot remove read-only label: ${label.name}`);
    runner.labels = runner.labels.filter((l) => l !== label);
    this.hooks.changed();
    return runner.labels;
  }

  // ---- tokens -------------------------------------------------------------------------------------

  /** Issues a registration or remove token for a scope. */
  issueToken(kind: "registration" | "remove", scope: ScopeRef): { token: string; expiresAt: number } {
    const token = runnerTokenString();
    const expiresAt = this.clock.now() + this.tokenTtlMs();
    this.state.tokens.set(hashSecret(token), { hash: hashSecret(token), kind, scope: scope.key, expiresAt });
    this.hooks.changed();
    return { token, expiresAt };
  }

  /** The record of an unexpired token of `kind`, or undefined (unknown, other kind, or expired). */
  validToken(kind: "registration" | "remove", token: string): RunnerTokenRecord | undefined {
    const record = this.state.tokens.get(hashSecret(token));
    return record !== undefined && record.kind === kind && this.clock.now() < record.expiresAt ? record : undefined;
  }
}

/** A fresh "Default" group record (id 1). */
export function defaultGroup(): GroupRecord {
  return {
    id: 1,
    name: "Default",
    visibility: "all",
    isDefault: true,
    allowsPublicRepositories: false,
    restrictedToWorkflows: false,
    selectedWorkflows: [],
    selectedRepositoryIds: [],
  };
}
