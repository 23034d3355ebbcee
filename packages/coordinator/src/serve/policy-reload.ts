/**
 * Policy reload of `lanekeeper serve`: on SIGHUP and when the policy file changes, read it again, validate it and
 * switch the running policy to it. A policy that does not validate, or that changes a setting only a restart can
 * apply (NATS servers and credentials, key and audit paths, GitHub endpoint and credentials, the webhook listener),
 * is refused: the last good policy keeps running, and the refusal is logged, counted and published with the
 * leader's policy revision so `lanekeeper status` shows it.
 */
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { canonicalJson, ConfigError, LanekeeperError, MAX_CONFIG_BYTES, parsePolicy, systemClock, type Clock, type Logger, type Policy } from "@lanekeeper/shared";
import { Counter, Gauge, type Registry } from "prom-client";
import type { CoordinatorErrorCode } from "../error-codes.js";
import { DEFAULT_POLICY_RELOAD_DEBOUNCE_MS } from "./limits.js";
import { policyRevision, shortDigest, type PublishedPolicy } from "./policy-revision.js";

/** A reload was refused; the running policy was kept. */
export class PolicyReloadError extends LanekeeperError<CoordinatorErrorCode> {
  /** `path: message` of every problem (a policy that does not validate), or the settings only a restart applies. */
  readonly problems: readonly string[];

  constructor(code: "POLICY_RELOAD_INVALID" | "POLICY_RESTART_NEEDED", message: string, problems: readonly string[], options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.problems = problems;
  }
}

/**
 * Settings a running `serve` cannot change: the connections, files, listeners and timers it opened or resolved
 * at start. Everything else (hosts, scopes, pools, lanes, drain timing, verify timeouts, apply concurrency) is
 * read by each reconcile cycle and applies at the next one.
 */
export const RESTART_ONLY_SETTINGS: readonly string[] = Object.freeze([
  "github.apiUrl",
  "github.webUrl",
  "github.auth",
  "github.createBudget",
  "coordinator.keyFile",
  "coordinator.natsServers",
  "coordinator.natsUser",
  "coordinator.natsPasswordEnv",
  "coordinator.natsCredsFile",
  "coordinator.jetstreamReplicas",
  "coordinator.auditFile",
  "coordinator.intentTtlMs",
  "coordinator.resultTimeoutMs",
  "coordinator.reconcileIntervalMs",
  "coordinator.webhook",
  "coordinator.demand",
]);

function at(policy: Policy, path: string): unknown {
  let v: unknown = policy;
  for (const k of path.split(".")) v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** Which of {@link RESTART_ONLY_SETTINGS} differ between the running policy and a new one. Pure. */
export function restartOnlyChanges(running: Policy, next: Policy): string[] {
  return RESTART_ONLY_SETTINGS.filter((p) => canonicalJson(at(running, p) ?? null) !== canonicalJson(at(next, p) ?? null));
}

/** What started a reload. */
export type ReloadTrigger = "SIGHUP" | "file change" | "start";

/** How a reload ended. */
export type ReloadResult =
  | { readonly status: "reloaded"; readonly revision: PublishedPolicy; readonly previous: string }
  | { readonly status: "unchanged"; readonly revision: PublishedPolicy }
  | { readonly status: "refused"; readonly error: PolicyReloadError; readonly revision: PublishedPolicy };

/** Options of {@link PolicyReloader}. */
export interface PolicyReloaderOptions {
  /** The policy file `serve` was started with. */
  readonly path: string;
  /** The policy `serve` was started with (read from `path`). */
  readonly initial: Policy;
  /**
   * A further check of a valid new policy against this process's state: a reason a restart is needed, or
   * undefined (e.g. the first queue-driven lane entry when the demand REST reconciliation was not started).
   */
  readonly restartNeeded?: (next: Policy) => string | undefined;
  /** Switch the parts that hold policy data of their own (the host registry) to the new policy; a throw refuses it. */
  readonly apply?: (next: Policy) => void;
  /**
   * Called when what {@link PolicyReloader.published} returns changed: a reload took (publish the new revision,
   * start a cycle at once) or was refused (publish the refusal).
   */
  readonly onPublished?: (revision: PublishedPolicy, reloaded: boolean) => void;
  /** Every reload's outcome (a refusal of content already refused is not repeated), e.g. for a line on stderr. */
  readonly onResult?: (result: ReloadResult, trigger: ReloadTrigger) => void;
  /** Metrics are registered here. */
  readonly registry?: Registry;
  /** Quiet time after the last file event before reading the file (editors write in several steps). @default DEFAULT_POLICY_RELOAD_DEBOUNCE_MS */
  readonly debounceMs?: number;
  readonly clock?: Clock;
  readonly log?: Logger;
}

const sha = (text: string): string => createHash("sha256").update(text).digest("hex");

/**
 * The running policy of a `serve` process and its reloads. {@link current} is what the next reconcile cycle plans
 * with; {@link published} is what goes into the leader lock record. Reloads run one at a time.
 */
export class PolicyReloader {
  private policy: Policy;
  private revision: PublishedPolicy;
  private failed: { atMs: number; message: string; text: string } | undefined;
  private serial: Promise<unknown> = Promise.resolve();
  private dirWatcher: FSWatcher | undefined;
  private fileWatcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly clock: Clock;
  private readonly reloads: Counter<"result">;
  private readonly failedGauge: Gauge;
  private readonly loadedGauge: Gauge;

  constructor(private readonly o: PolicyReloaderOptions) {
    this.clock = o.clock ?? systemClock;
    this.policy = o.initial;
    this.revision = policyRevision(o.initial, this.clock.now());
    const registers = o.registry === undefined ? [] : [o.registry];
    this.reloads = new Counter({
      name: "lanekeeper_policy_reloads_total",
      help: "Policy reloads by result (reloaded, unchanged, invalid, restart-needed)",
      labelNames: ["result"],
      registers,
    });
    for (const r of ["reloaded", "unchanged", "invalid", "restart-needed"]) this.reloads.inc({ result: r }, 0);
    this.failedGauge = new Gauge({ name: "lanekeeper_policy_reload_failed", help: "1 while the last policy reload was refused (the previous policy keeps running)", registers });
    this.loadedGauge = new Gauge({ name: "lanekeeper_policy_loaded_timestamp_seconds", help: "When the running policy was loaded", registers });
    this.loadedGauge.set(this.revision.loadedAtMs / 1000);
  }

  /** The policy the next reconcile cycle plans with. */
  get current(): Policy {
    return this.policy;
  }

  /** The running revision, with the last refused reload while it stands. */
  published(): PublishedPolicy {
    return this.failed === undefined ? this.revision : { ...this.revision, reloadFailed: { atMs: this.failed.atMs, message: this.failed.message } };
  }

  /** Read, validate and switch to the policy file. Never throws: a refusal is logged, counted and returned. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    const run = this.serial.then(() => this.reloadNow(trigger));
    this.serial = run.catch(() => undefined);
    return run;
  }

  /**
   * Watch the policy file and its directory; a change reloads after {@link PolicyReloaderOptions.debounceMs} of
   * quiet. The directory watch is what sees an editor's save (a new file renamed over the old one, which ends a
   * watch on the old file); the file watch sees writes in place where directory events are not reported.
   */
  watch(): void {
    if (this.closed || this.dirWatcher !== undefined) return;
    const name = basename(this.o.path);
    this.dirWatcher = this.open(dirname(this.o.path), (file) => file === null || file === name);
    this.watchFile();
  }

  /** Stop watching; a reload in progress finishes. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.dirWatcher?.close();
    this.fileWatcher?.close();
    await this.serial;
  }

  /** (Re-)watch the file itself: after a rename-over the old watch is of a gone inode. */
  private watchFile(): void {
    if (this.closed || this.fileWatcher !== undefined) return;
    const w = this.open(this.o.path, () => true, true);
    if (w === undefined) return;
    this.fileWatcher = w;
    w.once("close", () => {
      if (this.fileWatcher === w) this.fileWatcher = undefined;
    });
  }

  private open(path: string, relevant: (file: string | null) => boolean, isFile = false): FSWatcher | undefined {
    try {
      const w = watch(path, { persistent: false }, (event, file) => {
        if (relevant(typeof file === "string" ? file : null)) this.changed();
        if (isFile && event === "rename") w.close();
      });
      w.on("error", () => w.close());
      return w;
    } catch (err) {
      // A missing file (mid-save) is re-watched at the next reload; a missing directory leaves SIGHUP.
      if (!isFile) this.o.log?.warn({ path, err: err instanceof Error ? err.message : String(err) }, "cannot watch the policy's directory; it is reloaded on SIGHUP only");
      return undefined;
    }
  }

  private changed(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.reload("file change").then(() => this.watchFile());
    }, this.o.debounceMs ?? DEFAULT_POLICY_RELOAD_DEBOUNCE_MS);
  }

  private async reloadNow(trigger: ReloadTrigger): Promise<ReloadResult> {
    const log = this.o.log;
    let text: string;
    let next: Policy;
    try {
      const buf = await readFile(this.o.path);
      if (buf.length > MAX_CONFIG_BYTES) throw new PolicyReloadError("POLICY_RELOAD_INVALID", `${this.o.path} is larger than ${MAX_CONFIG_BYTES} bytes`, [`(file): larger than ${MAX_CONFIG_BYTES} bytes`]);
      text = buf.toString("utf8");
    } catch (err) {
      // A rename-over leaves no gap, but a delete-then-write does: the next event reloads again.
      const e = err instanceof PolicyReloadError ? err : new PolicyReloadError("POLICY_RELOAD_INVALID", `cannot read ${this.o.path}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`, [`(file): ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`], { cause: err });
      return this.refuse(trigger, e, `unreadable:${e.message}`);
    }
    if (this.failed?.text === sha(text) && trigger === "file change") {
      // The same refused content again (an editor touching the file): already said.
      return { status: "refused", error: new PolicyReloadError("POLICY_RELOAD_INVALID", this.failed.message, []), revision: this.published() };
    }
    try {
      next = parsePolicy(text, this.o.path);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.issues.map((i) => `${i.path === "" ? "(document)" : i.path}: ${i.message}`) : [err instanceof Error ? err.message : String(err)];
      return this.refuse(trigger, new PolicyReloadError("POLICY_RELOAD_INVALID", `${this.o.path} is invalid: ${problems.join("; ")}`, problems, { cause: err }), sha(text));
    }
    const digest = policyRevision(next, 0).digest;
    if (digest === this.revision.digest) {
      const wasFailed = this.failed !== undefined;
      this.failed = undefined;
      this.failedGauge.set(0);
      this.reloads.inc({ result: "unchanged" });
      if (wasFailed) {
        log?.info({ trigger, digest }, "policy file is back to the running policy; the refused reload no longer stands");
        this.o.onPublished?.(this.revision, false);
      } else if (trigger === "SIGHUP") log?.info({ trigger, digest }, `policy reload (SIGHUP): unchanged, running ${shortDigest(digest)}`);
      const result: ReloadResult = { status: "unchanged", revision: this.revision };
      this.o.onResult?.(result, trigger);
      return result;
    }
    const restart = restartOnlyChanges(this.policy, next);
    const extra = this.o.restartNeeded?.(next);
    if (extra !== undefined) restart.push(extra);
    if (restart.length > 0) {
      return this.refuse(
        trigger,
        new PolicyReloadError(
          "POLICY_RESTART_NEEDED",
          `restart needed: ${restart.join(", ")} changed, which a running lanekeeper serve cannot apply; restart it to use the new policy`,
          restart,
        ),
        sha(text),
      );
    }
    try {
      this.o.apply?.(next);
    } catch (err) {
      const m = err instanceof Error ? err.message : String(err);
      return this.refuse(trigger, new PolicyReloadError("POLICY_RELOAD_INVALID", `${this.o.path} cannot be applied: ${m}`, [m], { cause: err }), sha(text));
    }
    const previous = this.revision.digest;
    this.policy = next;
    this.revision = policyRevision(next, this.clock.now());
    this.failed = undefined;
    this.failedGauge.set(0);
    this.loadedGauge.set(this.revision.loadedAtMs / 1000);
    this.reloads.inc({ result: "reloaded" });
    log?.info({ trigger, digest: this.revision.digest, previous }, `policy reloaded (${trigger}): now running ${shortDigest(this.revision.digest)}`);
    this.o.onPublished?.(this.revision, true);
    const result: ReloadResult = { status: "reloaded", revision: this.revision, previous };
    this.o.onResult?.(result, trigger);
    return result;
  }

  private refuse(trigger: ReloadTrigger, error: PolicyReloadError, textSha: string): ReloadResult {
    this.failed = { atMs: this.clock.now(), message: error.message, text: textSha };
    this.failedGauge.set(1);
    this.reloads.inc({ result: error.code === "POLICY_RESTART_NEEDED" ? "restart-needed" : "invalid" });
    this.o.log?.warn(
      { trigger, code: error.code, errors: error.problems, keeping: this.revision.digest },
      `policy reload failed (${trigger}), keeping the last good policy ${shortDigest(this.revision.digest)}: ${error.message}`,
    );
    this.o.onPublished?.(this.published(), false);
    const result: ReloadResult = { status: "refused", error, revision: this.published() };
    this.o.onResult?.(result, trigger);
    return result;
  }
}
