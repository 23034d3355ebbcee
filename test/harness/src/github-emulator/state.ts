/**
 * The emulator's whole mutable state as plain records, plus its JSON snapshot for `--state-file`.
 * Behaviour lives in `registry.ts` (scopes, groups, runners, tokens) and `job-broker.ts` (sessions, jobs).
 * Secrets (registration/remove tokens, runner credentials) are stored only as SHA-256 hashes.
 */
import { createHash } from "node:crypto";
import { GitHubEmulatorError } from "./errors.js";

/** `repo:<owner>/<name>` or `org:<login>`, lower-cased: GitHub names are case-insensitive. */
export type ScopeKey = string;

/** A served repository. */
export interface RepoRecord {
  id: number;
  owner: string;
  name: string;
  /** Last `run_number` handed out. */
  runNumber: number;
}

/** A runner label; `read-only` labels are the defaults applied at configure time. */
export interface LabelRecord {
  id: number;
  name: string;
  type: "read-only" | "custom";
}

/** An organization runner group. */
export interface GroupRecord {
  id: number;
  name: string;
  visibility: "all" | "selected" | "private";
  isDefault: boolean;
  allowsPublicRepositories: boolean;
  restrictedToWorkflows: boolean;
  selectedWorkflows: string[];
  selectedRepositoryIds: number[];
}

/** A served organization with its runner groups (group 1 is "Default"). */
export interface OrgRecord {
  id: number;
  login: string;
  groups: GroupRecord[];
}

/** A runner registration. `status` and `busy` are derived (session liveness, `jobId`). */
export interface RunnerRecord {
  id: number;
  scope: ScopeKey;
  name: string;
  groupId: number;
  labels: LabelRecord[];
  ephemeral: boolean;
  os: string;
  version: string | null;
  credentialHash: string;
  workFolder: string;
  createdAt: number;
  /** Last time the runner talked to the service (session or poll); null if never. */
  lastSeenAt: number | null;
  /** The job handed to this runner, until it completes. */
  jobId: number | null;
  /** When `jobId` was handed out (drives the `busy` start lag). */
  assignedAt: number | null;
  /** When the runner's last job ended (drives the `busy` end lag); absent in older state files. */
  releasedAt?: number | null;
  /** When a session of this runner died without a goodbye (drives the `online` lag); absent in older state files. */
  sessionLostAt?: number | null;
}

/** A listener session of a runner. */
export interface SessionRecord {
  id: string;
  runnerId: number;
  createdAt: number;
  lastPollAt: number;
}

/** A registration or remove token (hashed). */
export interface RunnerTokenRecord {
  hash: string;
  kind: "registration" | "remove";
  scope: ScopeKey;
  expiresAt: number;
}

/** Job states as GitHub reports them (the subset the emulator produces). */
export type JobStatus = "queued" | "in_progress" | "completed";

/** Outcomes a runner can report through the runner protocol. */
export type RunnerConclusion = "success" | "failure" | "cancelled";

/** A workflow job created through the control API. */
export interface JobRecord {
  id: number;
  runId: number;
  repoId: number;
  name: string;
  /** The job's `runs-on` labels. */
  labels: string[];
  /** How long the emulated runner should work on it. */
  durationMs: number;
  /** The conclusion the emulated runner should report. */
  plannedConclusion: RunnerConclusion;
  status: JobStatus;
  conclusion: RunnerConclusion | null;
  runnerId: number | null;
  runnerName: string | null;
  runnerGroupId: number | null;
  runnerGroupName: string | null;
  /** The session the job was handed to. */
  sessionId: string | null;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
}

/** A workflow run; the emulator makes one run per job. */
export interface RunRecord {
  id: number;
  repoId: number;
  runNumber: number;
  name: string;
  headSha: string;
  createdAt: number;
  /** What started the run (`push` unless dispatched). */
  event?: string;
  /** The branch or tag the run is for (`main` unless dispatched on another ref). */
  headBranch?: string;
  /** The workflow file (`.github/workflows/ci.yml` unless dispatched). */
  path?: string;
  /** The workflow's id (1 unless dispatched). */
  workflowId?: number;
}

/** Id counters; each starts at 1 except groups (1 is every org's "Default"). */
export interface Counters {
  repo: number;
  org: number;
  group: number;
  runner: number;
  label: number;
  job: number;
  run: number;
}

/** The JSON written to `--state-file`. */
export interface StateSnapshot {
  version: 1;
  counters: Counters;
  repos: RepoRecord[];
  orgs: OrgRecord[];
  runners: RunnerRecord[];
  sessions: SessionRecord[];
  tokens: RunnerTokenRecord[];
  credentials: [string, number][];
  labelIds: [string, number][];
  jobs: JobRecord[];
  runs: RunRecord[];
}

/** SHA-256 hex of a secret; the state keeps only these. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Canonical scope keys. */
export const scopeKey = {
  repo: (owner: string, name: string): ScopeKey => `repo:${owner.toLowerCase()}/${name.toLowerCase()}`,
  org: (login: string): ScopeKey => `org:${login.toLowerCase()}`,
};

/** The state container. Fields are public on purpose: the registry and broker are its only writers. */
export class EmulatorState {
  counters: Counters = { repo: 0, org: 0, group: 1, runner: 0, label: 0, job: 0, run: 0 };
  readonly repos = new Map<ScopeKey, RepoRecord>();
  readonly orgs = new Map<ScopeKey, OrgRecord>();
  readonly runners = new Map<number, RunnerRecord>();
  readonly sessions = new Map<string, SessionRecord>();
  readonly tokens = new Map<string, RunnerTokenRecord>();
  /** Credential hash → runner id; kept after deletion so a deleted runner gets 404, not 401. */
  readonly credentials = new Map<string, number>();
  /** Lower-cased label name → label id, so a label keeps its id across runners. */
  readonly labelIds = new Map<string, number>();
  readonly jobs = new Map<number, JobRecord>();
  readonly runs = new Map<number, RunRecord>();

  /** Next id of a counter. */
  next(counter: keyof Counters): number {
    this.counters[counter] += 1;
    return this.counters[counter];
  }

  /**
   * Forgets runners, sessions, tokens, jobs and runs; keeps repos and orgs (with only their Default group).
   * Credentials stay as tombstones, so runner processes still holding one learn "registration deleted" (404).
   */
  clearActivity(): void {
    this.runners.clear();
    this.sessions.clear();
    this.tokens.clear();
    this.jobs.clear();
    this.runs.clear();
    for (const org of this.orgs.values()) org.groups = org.groups.filter((g) => g.isDefault);
    for (const repo of this.repos.values()) repo.runNumber = 0;
  }

  /** A deep copy fit for JSON. */
  snapshot(): StateSnapshot {
    return structuredClone({
      version: 1 as const,
      counters: this.counters,
      repos: [...this.repos.values()],
      orgs: [...this.orgs.values()],
      runners: [...this.runners.values()],
      sessions: [...this.sessions.values()],
      tokens: [...this.tokens.values()],
      credentials: [...this.credentials.entries()],
      labelIds: [...this.labelIds.entries()],
      jobs: [...this.jobs.values()],
      runs: [...this.runs.values()],
    });
  }

  /** Replaces the state with a snapshot (from `--state-file`). */
  restore(snapshot: StateSnapshot): void {
    if (snapshot.version !== 1 || typeof snapshot.counters !== "object") {
      throw new GitHubEmulatorError("STATE_FILE_INVALID", "state file: unsupported version or shape");
    }
    this.counters = { ...snapshot.counters };
    const fill = <K, V>(map: Map<K, V>, entries: Iterable<[K, V]>): void => {
      map.clear();
      for (const [k, v] of entries) map.set(k, v);
    };
    fill(this.repos, snapshot.repos.map((r) => [scopeKey.repo(r.owner, r.name), r]));
    fill(this.orgs, snapshot.orgs.map((o) => [scopeKey.org(o.login), o]));
    fill(this.runners, snapshot.runners.map((r) => [r.id, r]));
    fill(this.sessions, snapshot.sessions.map((s) => [s.id, s]));
    fill(this.tokens, snapshot.tokens.map((t) => [t.hash, t]));
    fill(this.credentials, snapshot.credentials);
    fill(this.labelIds, snapshot.labelIds);
    fill(this.jobs, snapshot.jobs.map((j) => [j.id, j]));
    fill(this.runs, snapshot.runs.map((r) => [r.id, r]));
  }
}
