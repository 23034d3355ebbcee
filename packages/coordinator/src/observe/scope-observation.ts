import type { GitHubRunner } from "../github/github-types.js";

/** GitHub's runners of one scope, read successfully. */
export interface ScopeObserved {
  readonly scope: string;
  readonly status: "ok";
  readonly runners: readonly GitHubRunner[];
  /**
   * False when the listing did not add up; absence of a registration in an incomplete list is not evidence
   * that it is gone.
   */
  readonly complete: boolean;
  readonly observedAtMs: number;
}

/** A scope whose runners could not be read (or were not read) this cycle. Nothing is concluded about it. */
export interface ScopeUnavailable {
  readonly scope: string;
  readonly status: "unavailable";
  /** Stable code: the error code (`GITHUB_AUTH`, `GITHUB_RATE_LIMIT_RESERVED`, ...) or `NOT_OBSERVED`. */
  readonly code: string;
  readonly message: string;
}

/** One scope's observation. */
export type ScopeObservation = ScopeObserved | ScopeUnavailable;

/** Whether absence of a registration in this observation is evidence that it is gone. */
export function isCompleteListing(obs: ScopeObservation | undefined): obs is ScopeObserved {
  return obs?.status === "ok" && obs.complete;
}
