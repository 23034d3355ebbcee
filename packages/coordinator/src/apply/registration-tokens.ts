import { systemClock, type Clock } from "@lanekeeper/shared";
import type { GitHubClient } from "../github/github-client.js";
import type { RunnerToken } from "../github/github-types.js";
import { REGISTRATION_TOKEN_SAFETY_MARGIN_MS } from "./limits.js";

/**
 * One registration token per scope, reused by every persistent lane created in that scope while it is valid
 * (GitHub's tokens live an hour; a token is reused only while more than {@link REGISTRATION_TOKEN_SAFETY_MARGIN_MS}
 * of it is left, so the agent still holds a valid one when it runs `config.sh`). A token is a content-creating
 * request on GitHub (secondary rate limit): minting one per lane spent the budget that ephemeral lanes' JIT configs
 * need. Kept only in this process's memory, as a {@link RedactedSecret} (never logged, never persisted). A create
 * whose registration was refused asks for a fresh token ({@link forget}).
 */
export class RegistrationTokenCache {
  private readonly tokens = new Map<string, { token: RunnerToken; expiresAtMs: number }>();
  private readonly pending = new Map<string, Promise<RunnerToken>>();

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly marginMs: number = REGISTRATION_TOKEN_SAFETY_MARGIN_MS,
  ) {}

  /** A registration token for `scope`: the cached one while valid long enough, else a new one from `github`. */
  async get(github: GitHubClient, scope: string): Promise<RunnerToken> {
    const cached = this.tokens.get(scope);
    if (cached !== undefined && cached.expiresAtMs - this.clock.now() > this.marginMs) return cached.token;
    // Creates of one scope running side by side share one request.
    const inFlight = this.pending.get(scope);
    if (inFlight !== undefined) return inFlight;
    const p = github.createRegistrationToken(scope).then((token) => {
      const expiresAtMs = Date.parse(token.expiresAt);
      if (Number.isFinite(expiresAtMs)) this.tokens.set(scope, { token, expiresAtMs });
      return token;
    });
    this.pending.set(scope, p);
    try {
      return await p;
    } finally {
      this.pending.delete(scope);
    }
  }

  /** Drop the cached token of `scope` (GitHub refused it, or it is suspected revoked). */
  forget(scope: string): void {
    this.tokens.delete(scope);
  }
}
