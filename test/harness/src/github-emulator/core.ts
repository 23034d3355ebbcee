/**
 * The emulator's core: state, registry, job broker, faults, rate limiter, stats, webhooks and tokens,
 * wired together. The three HTTP faces (`rest-api.ts`, `runner-protocol.ts`, `control-api.ts`) share it.
 */
import { RunnerReleases } from "./runner-releases.js";
import { randomBytes } from "node:crypto";
import { FaultState } from "./faults.js";
import { JobBroker, type JobAction } from "./job-broker.js";
import { TraceRunner } from "./job-trace.js";
import { RateLimiter } from "./rate-limit.js";
import { Registry } from "./registry.js";
import { emulatorUser, jobJson, organizationJson, repositoryJson, runnerJson, type Urls } from "./representations.js";
import type { ResolvedRealism } from "./realism.js";
import { EmulatorState, hashSecret, type JobRecord, type RunnerRecord } from "./state.js";
import { Stats } from "./stats.js";
import { WebhookSender } from "./webhooks.js";
import { WorkflowRegistry } from "./workflows.js";
import type { ResolvedEmulatorOptions, TokenAccess } from "./options.js";

/** Who made a REST request. */
export interface Identity {
  /** Token name for stats (`admin` for the `--token`). */
  name: string;
  access: TokenAccess;
}

/** Everything the HTTP faces need. */
export class EmulatorCore {
  readonly state = new EmulatorState();
  readonly registry: Registry;
  readonly broker: JobBroker;
  readonly faults = new FaultState();
  readonly limiter: RateLimiter;
  readonly stats = new Stats();
  readonly webhooks: WebhookSender;
  /** Workflow files defined through the control API, for `workflow_dispatch`. */
  readonly workflows = new WorkflowRegistry();
  /** Job traces replayed through the control API. */
  readonly traces: TraceRunner;
  /** Runner versions `downloads` lists, with real archives of the runner emulator. */
  readonly releases = new RunnerReleases();
  /** Filled in once the server listens. */
  urls: Urls = { web: "http://127.0.0.1", api: "http://127.0.0.1/api/v3" };
  /** Creation time of the emulated repositories. */
  readonly startedAt: number;
  private readonly identities = new Map<string, Identity>();
  private realismNow: ResolvedRealism;

  constructor(
    readonly options: ResolvedEmulatorOptions,
    private readonly persist: () => void,
  ) {
    const clock = options.clock;
    this.startedAt = clock.now();
    this.limiter = new RateLimiter(clock);
    this.realismNow = options.realism;
    this.webhooks = new WebhookSender(
      options.webhookUrl === undefined ? undefined : { url: options.webhookUrl, ...(options.webhookSecret === undefined ? {} : { secret: options.webhookSecret }) },
      (fate) => this.stats.webhook(fate),
      options.realism,
    );
    // The registry and the broker call each other; the hook reads `this.broker` only after both exist.
    this.registry = new Registry(this.state, clock, () => options.tokenTtlMs, {
      runnerGone: (runner, why) => this.broker.onRunnerGone(runner, why),
      changed: () => this.persist(),
    });
    this.broker = new JobBroker(this.state, this.registry, clock, () => this.offlineAfterMs(), {
      jobEvent: (action, job) => this.sendJobWebhook(action, job),
      changed: () => this.persist(),
    });
    this.traces = new TraceRunner({
      repo: (name) => {
        const [owner, repo] = name.split("/");
        const scope = owner === undefined || repo === undefined ? undefined : this.registry.repoScope(owner, repo);
        return scope?.kind === "repo" ? scope.repo : undefined;
      },
      createJob: (repo, spec) => this.broker.createJob(repo, spec),
      job: (id) => this.state.jobs.get(id),
      now: () => clock.now(),
    });
    this.identities.set(hashSecret(options.token), { name: "admin", access: "admin" });
    for (const t of options.tokens) this.identities.set(hashSecret(t.token), { name: t.name, access: t.access });
    this.seedScopes();
  }

  /** Adds the `--repo`/`--org` scopes (idempotent, also after a state file was loaded). */
  seedScopes(): void {
    for (const org of this.options.orgs) this.registry.addOrg(org);
    for (const r of this.options.repos) this.registry.addRepo(r.owner, r.name);
  }

  /** The offline timeout in force (a fault overrides the option). */
  offlineAfterMs(): number {
    return this.faults.offlineAfterMs() ?? this.options.offlineAfterMs;
  }

  /** The realism in force (the option, or what the control API set since). */
  realism(): ResolvedRealism {
    return this.realismNow;
  }

  /** Replaces the realism in force; the webhook generator restarts from its seed. */
  setRealism(realism: ResolvedRealism): void {
    this.realismNow = realism;
    this.webhooks.setRealism(realism);
  }

  /** The identity of a REST token, or undefined if unknown. */
  identityOf(token: string): Identity | undefined {
    return this.identities.get(hashSecret(token));
  }

  /** Creates a REST token (control API); returns the token string. */
  addToken(name: string, access: TokenAccess, token = `lk_${randomBytes(20).toString("hex")}`): string {
    this.identities.set(hashSecret(token), { name, access });
    return token;
  }

  /**
   * A runner as the REST API shows it, lagging the server's truth as GitHub does: `busy` turns true
   * `busyStartLagMs` after a job was handed out (the `busyLagMs` fault overrides it) and stays true
   * `busyEndLagMs` after the job ended; a runner whose session died without a goodbye stays `online` for
   * `onlineLagMs`.
   */
  runnerView(runner: RunnerRecord, inOrg: boolean): Record<string, unknown> {
    const now = this.options.clock.now();
    const r = this.realismNow;
    const startLag = this.faults.busyLagMs() ?? r.busyStartLagMs;
    const busyNow = runner.jobId !== null && !(runner.assignedAt !== null && now - runner.assignedAt < startLag);
    const busyStill = runner.releasedAt != null && now - runner.releasedAt < r.busyEndLagMs;
    const lingering = runner.sessionLostAt != null && now - runner.sessionLostAt < r.onlineLagMs;
    return runnerJson(runner, { online: this.broker.isOnline(runner) || lingering, busy: busyNow || busyStill, inOrg });
  }

  /** Web URL of a scope key's repository or organization. */
  webUrlOf(scopeKeyValue: string): string {
    const scope = this.registry.scopeByKey(scopeKeyValue);
    if (!scope) return this.urls.web;
    return scope.kind === "repo" ? `${this.urls.web}/${scope.repo.owner}/${scope.repo.name}` : `${this.urls.web}/${scope.org.login}`;
  }

  /** Back to a fresh start: no runners, jobs, traces, tokens, faults, stats or rate-limit use; realism as started; scopes kept. */
  reset(): void {
    this.traces.clear();
    this.broker.shutdown();
    this.state.clearActivity();
    this.faults.clear();
    this.setRealism(this.options.realism);
    this.releases.clearFaults();
    this.limiter.reset();
    this.stats.reset();
    this.persist();
  }

  private sendJobWebhook(action: JobAction, job: JobRecord): void {
    const repo = this.registry.repoById(job.repoId);
    const run = this.state.runs.get(job.runId);
    if (!repo || !run) return;
    const org = this.registry.orgOf(repo);
    const payload: Record<string, unknown> = {
      action,
      workflow_job: jobJson(this.urls, repo, run, job),
      repository: repositoryJson(this.urls, repo, org, this.startedAt),
      sender: emulatorUser(this.urls),
    };
    if (org) payload.organization = organizationJson(this.urls, org);
    this.webhooks.deliver("workflow_job", action, payload, {
      "x-github-hook-installation-target-id": String(repo.id),
      "x-github-hook-installation-target-type": "repository",
    });
  }
}
