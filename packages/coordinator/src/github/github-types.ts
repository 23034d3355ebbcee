import type { RedactedSecret } from "./redacted-secret.js";

/** One label on a GitHub runner. */
export interface GitHubRunnerLabel {
  readonly name: string;
  /** `read-only` labels are applied by GitHub at configure time; `custom` ones can be changed. */
  readonly type: "read-only" | "custom" | undefined;
}

/** A self-hosted runner registration as GitHub reports it (the fields lanekeeper uses). */
export interface GitHubRunner {
  readonly id: number;
  readonly name: string;
  /** Opaque: `linux`, `Linux`, `unknown` for a JIT runner that never connected, ... */
  readonly os: string;
  /** `online` or `offline`. */
  readonly status: string;
  /** True while GitHub has a job assigned. It lags: never treat `false` alone as idle. */
  readonly busy: boolean;
  readonly labels: readonly GitHubRunnerLabel[];
  readonly ephemeral: boolean | undefined;
  readonly runnerGroupId: number | undefined;
  /**
   * The runner version GitHub last saw (`version`, "only set if the runner has connected to the service at least
   * once"); absent before the first connection. Upgrades compare it when present.
   */
  readonly version?: string | undefined;
}

/** The runners of one scope, from a (possibly conditional) paginated listing. */
export interface RunnerList {
  readonly scope: string;
  readonly runners: readonly GitHubRunner[];
  /** True when every page answered 304 and the list came from the ETag cache. */
  readonly notModified: boolean;
  /**
   * False when the pages did not add up (fewer unique runners than `total_count`, e.g. registrations moved
   * between pages while listing). An incomplete list must not be used to conclude that a runner is gone.
   */
  readonly complete: boolean;
  /** HTTP requests this listing made (one per page). */
  readonly requests: number;
}

/** A registration or remove token. Both expire after one hour. */
export interface RunnerToken {
  readonly token: RedactedSecret;
  /** ISO 8601 date-time. */
  readonly expiresAt: string;
}

/** The body of `generate-jitconfig`. */
export interface JitConfigRequest {
  /** Runner name; must be unique in the scope (409 otherwise). */
  readonly name: string;
  /** Runner group id; 1 is "Default". */
  readonly runnerGroupId: number;
  /** Custom labels, 1..100. */
  readonly labels: readonly string[];
  /** @default "_work" */
  readonly workFolder?: string;
}

/** A just-in-time runner registration. */
export interface JitConfig {
  readonly runner: GitHubRunner;
  readonly encodedJitConfig: RedactedSecret;
}

/** A runner group of an organization. */
export interface RunnerGroup {
  readonly id: number;
  readonly name: string;
  readonly visibility: string;
  readonly default: boolean;
}

/** One entry of a scope's runner downloads (`runner-application`). */
export interface RunnerApplication {
  readonly os: string;
  readonly architecture: string;
  readonly filename: string;
  readonly downloadUrl: string;
  /** Lower-case hex SHA-256, when GitHub lists one. */
  readonly sha256?: string | undefined;
}

/** Outcome of a runner deletion. `not-found` means the registration was already gone. */
export type DeleteRunnerOutcome = "deleted" | "not-found";
