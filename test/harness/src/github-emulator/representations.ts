/**
 * GitHub's JSON shapes for the emulator's records, built to match `@octokit/openapi`'s schemas
 * (`runner`, `runner-label`, `runner-groups-org`, `job`, `workflow-run`, `minimal-repository`,
 * `repository-webhooks`, `simple-user`, `authentication-token`, `runner-application`). Pure functions.
 */
import { ADVERTISED_RUNNER_VERSION } from "./limits.js";
import type { GroupRecord, JobRecord, LabelRecord, OrgRecord, RepoRecord, RunRecord, RunnerRecord } from "./state.js";

/** Where the emulator is reachable; every URL in a body is built from these. */
export interface Urls {
  /** Web base, e.g. `http://127.0.0.1:1234`. */
  web: string;
  /** REST base, e.g. `http://127.0.0.1:1234/api/v3`. */
  api: string;
}

/** ISO 8601 without milliseconds, as GitHub writes timestamps. */
export function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** `simple-user` for a user or organization login. */
export function simpleUser(urls: Urls, login: string, id: number, type: "User" | "Organization"): Record<string, unknown> {
  const api = `${urls.api}/users/${login}`;
  return {
    login,
    id,
    node_id: `${type === "User" ? "U" : "O"}_kgDO${id}`,
    avatar_url: `${urls.web}/avatars/${login}`,
    gravatar_id: "",
    url: api,
    html_url: `${urls.web}/${login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type,
    user_view_type: "public",
    site_admin: false,
  };
}

/** The user every emulated event is attributed to (run actor, webhook sender). */
export function emulatorUser(urls: Urls): Record<string, unknown> {
  return simpleUser(urls, "lk-emulator", 1, "User");
}

/** The owner of a repository: its organization when the emulator serves one of that name, else a user. */
export function repoOwner(urls: Urls, repo: RepoRecord, org: OrgRecord | undefined): Record<string, unknown> {
  return org ? simpleUser(urls, org.login, org.id, "Organization") : simpleUser(urls, repo.owner, 900_000 + repo.id, "User");
}

/**
 * A repository object valid both as `minimal-repository` (REST) and `repository-webhooks` (webhooks).
 * @param createdAt - creation time (the emulator uses its start time)
 */
export function repositoryJson(urls: Urls, repo: RepoRecord, org: OrgRecord | undefined, createdAt: number): Record<string, unknown> {
  const full = `${repo.owner}/${repo.name}`;
  const api = `${urls.api}/repos/${full}`;
  const html = `${urls.web}/${full}`;
  return {
    id: repo.id,
    node_id: `R_kgDO${repo.id}`,
    name: repo.name,
    full_name: full,
    private: true,
    owner: repoOwner(urls, repo, org),
    html_url: html,
    description: null,
    fork: false,
    url: api,
    archive_url: `${api}/{archive_format}{/ref}`,
    assignees_url: `${api}/assignees{/user}`,
    blobs_url: `${api}/git/blobs{/sha}`,
    branches_url: `${api}/branches{/branch}`,
    collaborators_url: `${api}/collaborators{/collaborator}`,
    comments_url: `${api}/comments{/number}`,
    commits_url: `${api}/commits{/sha}`,
    compare_url: `${api}/compare/{base}...{head}`,
    contents_url: `${api}/contents/{+path}`,
    contributors_url: `${api}/contributors`,
    deployments_url: `${api}/deployments`,
    downloads_url: `${api}/downloads`,
    events_url: `${api}/events`,
    forks_url: `${api}/forks`,
    git_commits_url: `${api}/git/commits{/sha}`,
    git_refs_url: `${api}/git/refs{/sha}`,
    git_tags_url: `${api}/git/tags{/sha}`,
    git_url: `git://${new URL(urls.web).host}/${full}.git`,
    issue_comment_url: `${api}/issues/comments{/number}`,
    issue_events_url: `${api}/issues/events{/number}`,
    issues_url: `${api}/issues{/number}`,
    keys_url: `${api}/keys{/key_id}`,
    labels_url: `${api}/labels{/name}`,
    languages_url: `${api}/languages`,
    merges_url: `${api}/merges`,
    milestones_url: `${api}/milestones{/number}`,
    notifications_url: `${api}/notifications{?since,all,participating}`,
    pulls_url: `${api}/pulls{/number}`,
    releases_url: `${api}/releases{/id}`,
    ssh_url: `git@${new URL(urls.web).hostname}:${full}.git`,
    stargazers_url: `${api}/stargazers`,
    statuses_url: `${api}/statuses/{sha}`,
    subscribers_url: `${api}/subscribers`,
    subscription_url: `${api}/subscription`,
    tags_url: `${api}/tags`,
    teams_url: `${api}/teams`,
    trees_url: `${api}/git/trees{/sha}`,
    clone_url: `${html}.git`,
    mirror_url: null,
    hooks_url: `${api}/hooks`,
    svn_url: html,
    homepage: null,
    language: null,
    forks: 0,
    forks_count: 0,
    stargazers_count: 0,
    watchers: 0,
    watchers_count: 0,
    size: 0,
    default_branch: "main",
    open_issues: 0,
    open_issues_count: 0,
    is_template: false,
    topics: [],
    has_issues: true,
    has_projects: false,
    has_wiki: false,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: false,
    disabled: false,
    visibility: "private",
    license: null,
    pushed_at: iso(createdAt),
    created_at: iso(createdAt),
    updated_at: iso(createdAt),
  };
}

/** `organization-simple-webhooks`, the `organization` key of webhook payloads. */
export function organizationJson(urls: Urls, org: OrgRecord): Record<string, unknown> {
  const api = `${urls.api}/orgs/${org.login}`;
  return {
    login: org.login,
    id: org.id,
    node_id: `O_kgDO${org.id}`,
    url: api,
    repos_url: `${api}/repos`,
    events_url: `${api}/events`,
    hooks_url: `${api}/hooks`,
    issues_url: `${api}/issues`,
    members_url: `${api}/members{/member}`,
    public_members_url: `${api}/public_members{/member}`,
    avatar_url: `${urls.web}/avatars/${org.login}`,
    description: null,
  };
}

/** `runner-label`. */
export function labelJson(label: LabelRecord): Record<string, unknown> {
  return { id: label.id, name: label.name, type: label.type };
}

/** `{total_count, labels}`, exactly these keys (see the Octokit paginate gotcha). */
export function labelListJson(labels: readonly LabelRecord[]): Record<string, unknown> {
  return { total_count: labels.length, labels: labels.map(labelJson) };
}

/**
 * `runner`. `status` and `busy` are passed in because they are derived (session liveness, the busy-lag
 * fault); `runner_group_id` appears only for organization runners, which are the ones in groups.
 */
export function runnerJson(runner: RunnerRecord, view: { online: boolean; busy: boolean; inOrg: boolean }): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: runner.id,
    name: runner.name,
    os: runner.os,
    status: view.online ? "online" : "offline",
    busy: view.busy,
    ephemeral: runner.ephemeral,
    labels: runner.labels.map(labelJson),
  };
  if (view.inOrg) body.runner_group_id = runner.groupId;
  // The spec: "only set if the runner has connected to the service at least once".
  if (runner.version !== null) body.version = runner.version;
  return body;
}

/** `runner-groups-org`. */
export function groupJson(urls: Urls, org: OrgRecord, group: GroupRecord): Record<string, unknown> {
  const base = `${urls.api}/orgs/${org.login}/actions/runner-groups/${group.id}`;
  const body: Record<string, unknown> = {
    id: group.id,
    name: group.name,
    visibility: group.visibility,
    default: group.isDefault,
    runners_url: `${base}/runners`,
    hosted_runners_url: `${base}/hosted-runners`,
    inherited: false,
    allows_public_repositories: group.allowsPublicRepositories,
    restricted_to_workflows: group.restrictedToWorkflows,
    selected_workflows: group.selectedWorkflows,
    workflow_restrictions_read_only: false,
  };
  if (group.visibility === "selected") body.selected_repositories_url = `${base}/repositories`;
  return body;
}

/** `authentication-token`. */
export function tokenJson(token: string, expiresAt: number): Record<string, unknown> {
  return { token, expires_at: iso(expiresAt) };
}

/**
 * The bare array of `runner-application` that `downloads` returns: the published linux archives (`linux`, with
 * `sha256_checksum`, served by the emulator itself) and the other platforms of the same release (`version`, the
 * newest published), so every entry names one version as GitHub's do.
 */
export function downloadsJson(linux: readonly Record<string, unknown>[] = [], version: string = ADVERTISED_RUNNER_VERSION): Record<string, unknown>[] {
  const v = version;
  const entries: [string, string, string][] = [
    ["osx", "x64", "osx-x64"],
    ["osx", "arm64", "osx-arm64"],
    ["linux", "x64", "linux-x64"],
    ["linux", "arm", "linux-arm"],
    ["linux", "arm64", "linux-arm64"],
    ["win", "x64", "win-x64"],
    ["win", "arm64", "win-arm64"],
  ];
  const others = entries
    .filter(([os, architecture]) => !(linux.length > 0 && os === "linux" && (architecture === "x64" || architecture === "arm64")))
    .map(([os, architecture, slug]) => {
      const filename = `actions-runner-${slug}-${v}.${os === "win" ? "zip" : "tar.gz"}`;
      return { os, architecture, download_url: `https://github.com/actions/runner/releases/download/v${v}/${filename}`, filename };
    });
  return [...linux, ...others];
}

/** A workflow run's status and conclusion, derived from its jobs as GitHub rolls them up. */
export function runOutcome(jobs: readonly JobRecord[]): { status: JobRecord["status"]; conclusion: string | null } {
  if (jobs.length > 0 && jobs.every((j) => j.status === "completed")) {
    const conclusions = new Set(jobs.map((j) => j.conclusion));
    const conclusion = conclusions.has("failure") ? "failure" : conclusions.has("cancelled") ? "cancelled" : "success";
    return { status: "completed", conclusion };
  }
  return { status: jobs.some((j) => j.status !== "queued") ? "in_progress" : "queued", conclusion: null };
}

/** `job` (REST) — also the `workflow_job` of webhook payloads. */
export function jobJson(urls: Urls, repo: RepoRecord, run: RunRecord, job: JobRecord): Record<string, unknown> {
  const api = `${urls.api}/repos/${repo.owner}/${repo.name}`;
  const html = `${urls.web}/${repo.owner}/${repo.name}`;
  return {
    id: job.id,
    run_id: run.id,
    workflow_name: run.name,
    head_branch: "main",
    run_url: `${api}/actions/runs/${run.id}`,
    run_attempt: 1,
    node_id: `CR_kwDO${job.id}`,
    head_sha: run.headSha,
    url: `${api}/actions/jobs/${job.id}`,
    html_url: `${html}/actions/runs/${run.id}/job/${job.id}`,
    status: job.status,
    conclusion: job.conclusion,
    created_at: iso(job.createdAt),
    // GitHub reports a queued job's started_at as its creation time.
    started_at: iso(job.startedAt ?? job.createdAt),
    completed_at: job.completedAt === null ? null : iso(job.completedAt),
    name: job.name,
    steps: [],
    check_run_url: `${api}/check-runs/${job.id}`,
    labels: [...job.labels],
    runner_id: job.runnerId,
    runner_name: job.runnerName,
    runner_group_id: job.runnerGroupId,
    runner_group_name: job.runnerGroupName,
  };
}

/** `workflow-run`. */
export function runJson(
  urls: Urls,
  repo: RepoRecord,
  org: OrgRecord | undefined,
  run: RunRecord,
  jobs: readonly JobRecord[],
  repoCreatedAt: number,
): Record<string, unknown> {
  const api = `${urls.api}/repos/${repo.owner}/${repo.name}`;
  const runApi = `${api}/actions/runs/${run.id}`;
  const outcome = runOutcome(jobs);
  const updated = Math.max(run.createdAt, ...jobs.map((j) => j.completedAt ?? j.startedAt ?? j.createdAt));
  const repository = repositoryJson(urls, repo, org, repoCreatedAt);
  const actor = emulatorUser(urls);
  return {
    id: run.id,
    name: run.name,
    node_id: `WFR_kwLO${run.id}`,
    head_branch: run.headBranch ?? "main",
    head_sha: run.headSha,
    path: run.path ?? ".github/workflows/ci.yml",
    display_title: run.name,
    run_number: run.runNumber,
    run_attempt: 1,
    event: run.event ?? "push",
    status: outcome.status,
    conclusion: outcome.conclusion,
    workflow_id: run.workflowId ?? 1,
    check_suite_id: run.id,
    check_suite_node_id: `CS_kwDO${run.id}`,
    url: runApi,
    html_url: `${urls.web}/${repo.owner}/${repo.name}/actions/runs/${run.id}`,
    pull_requests: [],
    created_at: iso(run.createdAt),
    updated_at: iso(updated),
    run_started_at: iso(run.createdAt),
    actor,
    triggering_actor: actor,
    jobs_url: `${runApi}/jobs`,
    logs_url: `${runApi}/logs`,
    check_suite_url: `${api}/check-suites/${run.id}`,
    artifacts_url: `${runApi}/artifacts`,
    cancel_url: `${runApi}/cancel`,
    rerun_url: `${runApi}/rerun`,
    previous_attempt_url: null,
    workflow_url: `${api}/actions/workflows/1`,
    head_commit: {
      id: run.headSha,
      tree_id: run.headSha.split("").reverse().join(""),
      message: run.name,
      timestamp: iso(run.createdAt),
      author: { name: "Emulated Author", email: "author@example.com" },
      committer: { name: "Emulated Author", email: "author@example.com" },
    },
    repository,
    head_repository: repository,
    head_repository_id: repo.id,
  };
}
