import { randomBytes } from "node:crypto";
import { GitHubEmulatorError } from "./errors.js";
import {
  DEFAULT_OFFLINE_AFTER_MS,
  DEFAULT_RATE_LIMIT_PER_HOUR,
  RUNNER_TOKEN_TTL_MS,
} from "./limits.js";
import { resolveRealism, type RealismOptions, type ResolvedRealism } from "./realism.js";

/** Time source; structurally the same as `Clock` in `@lanekeeper/shared`, so its `FakeClock` fits. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** What a REST token may do. */
export type TokenAccess = "admin" | "read";

/** An extra REST token, e.g. a read-only one to provoke GitHub's 403. */
export interface ExtraToken {
  /** Name used in `GET /_emulator/stats` (the token itself is never reported). */
  name: string;
  /** The token string clients send. */
  token: string;
  /**
   * `admin` may do everything; `read` is a token without admin rights: 403 on runner and runner-group endpoints
   * (reads too) and on every mutation, as GitHub answers; it may read workflow runs and jobs.
   */
  access: TokenAccess;
}

/** Options of {@link startGitHubEmulator} (and, one to one, of the `lk-github-emulator` command). */
export interface GitHubEmulatorOptions {
  /** TCP port; 0 picks a free one. @default 0 */
  port?: number;
  /** Address to listen on. @default "127.0.0.1" */
  host?: string;
  /** Admin token accepted by the REST API (`Authorization: token X` / `Bearer X`). @default a random token */
  token?: string;
  /** More REST tokens (name, token, access). @default [] */
  tokens?: ExtraToken[];
  /** Repositories served, as `owner/name`. @default [] */
  repos?: string[];
  /** Organizations served (each gets runner group 1, "Default"). @default [] */
  orgs?: string[];
  /** A session without a poll for this long goes offline (models `kill -9`). @default 3000 */
  offlineAfterMs?: number;
  /** Persist the state here (JSON, written atomically) and load it at start. @default none */
  stateFile?: string;
  /** Deliver `workflow_job` webhooks here. @default none */
  webhookUrl?: string;
  /** Secret for `X-Hub-Signature-256`; without it deliveries are unsigned, as on GitHub. @default none */
  webhookSecret?: string;
  /** Lifetime of registration and remove tokens. @default 3600000 (GitHub's one hour) */
  tokenTtlMs?: number;
  /** Primary rate limit per token and hour. @default 5000 */
  rateLimitPerHour?: number;
  /** Time source for timestamps, expiry and liveness. @default the system clock */
  clock?: Clock;
  /**
   * GitHub's imperfections: `busy` lag, a killed runner staying online, lost and late webhooks (`realism.ts`).
   * `true` is the fleet's defaults (`FLEET_REALISM`). @default false (fault-free)
   */
  realism?: RealismOptions | boolean;
}

/** Options after defaults and checks; frozen. */
export interface ResolvedEmulatorOptions {
  readonly port: number;
  readonly host: string;
  readonly token: string;
  readonly tokens: readonly ExtraToken[];
  readonly repos: readonly { owner: string; name: string }[];
  readonly orgs: readonly string[];
  readonly offlineAfterMs: number;
  readonly stateFile: string | undefined;
  readonly webhookUrl: string | undefined;
  readonly webhookSecret: string | undefined;
  readonly tokenTtlMs: number;
  readonly rateLimitPerHour: number;
  readonly clock: Clock;
  readonly realism: ResolvedRealism;
}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})$/;

function fail(path: string, message: string): never {
  throw new GitHubEmulatorError("OPTIONS_INVALID", `${path}: ${message}`);
}

function nonNegativeInt(path: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) fail(path, `must be a non-negative integer, got ${String(value)}`);
  return value;
}

/** Parses `owner/name`; throws `OPTIONS_INVALID` with the offending value otherwise. */
export function parseRepoName(path: string, value: string): { owner: string; name: string } {
  const parts = value.split("/");
  if (parts.length !== 2 || !NAME.test(parts[0] ?? "") || !NAME.test(parts[1] ?? "")) {
    fail(path, `expected owner/name, got ${JSON.stringify(value)}`);
  }
  return { owner: parts[0] as string, name: parts[1] as string };
}

/** Applies defaults and validates; bad combinations throw {@link GitHubEmulatorError} `OPTIONS_INVALID`. */
export function resolveEmulatorOptions(options: GitHubEmulatorOptions = {}): ResolvedEmulatorOptions {
  const port = nonNegativeInt("port", options.port, 0);
  if (port > 65535) fail("port", "must be at most 65535");
  const token = options.token ?? `lk_${randomBytes(20).toString("hex")}`;
  if (token.length < 1 || /\s/.test(token)) fail("token", "must be non-empty and contain no whitespace");
  const tokens = (options.tokens ?? []).map((t, i) => {
    if (!t.name || !t.token || /\s/.test(t.token)) fail(`tokens[${i}]`, "needs a name and a token without whitespace");
    if (t.access !== "admin" && t.access !== "read") fail(`tokens[${i}].access`, 'must be "admin" or "read"');
    if (t.token === token) fail(`tokens[${i}].token`, "duplicates the admin token");
    return Object.freeze({ ...t });
  });
  const repos = (options.repos ?? []).map((r, i) => parseRepoName(`repos[${i}]`, r));
  const orgs = (options.orgs ?? []).map((o, i) => {
    if (!NAME.test(o)) fail(`orgs[${i}]`, `not an organization name: ${JSON.stringify(o)}`);
    return o;
  });
  if (options.webhookSecret !== undefined && options.webhookUrl === undefined) {
    fail("webhookSecret", "given without webhookUrl");
  }
  if (options.webhookUrl !== undefined) {
    try {
      new URL(options.webhookUrl);
    } catch {
      fail("webhookUrl", `not a URL: ${JSON.stringify(options.webhookUrl)}`);
    }
  }
  const offlineAfterMs = nonNegativeInt("offlineAfterMs", options.offlineAfterMs, DEFAULT_OFFLINE_AFTER_MS);
  if (offlineAfterMs < 1) fail("offlineAfterMs", "must be at least 1");
  return Object.freeze({
    port,
    host: options.host ?? "127.0.0.1",
    token,
    tokens: Object.freeze(tokens),
    repos: Object.freeze(repos),
    orgs: Object.freeze(orgs),
    offlineAfterMs,
    stateFile: options.stateFile,
    webhookUrl: options.webhookUrl,
    webhookSecret: options.webhookSecret,
    tokenTtlMs: nonNegativeInt("tokenTtlMs", options.tokenTtlMs, RUNNER_TOKEN_TTL_MS),
    rateLimitPerHour: nonNegativeInt("rateLimitPerHour", options.rateLimitPerHour, DEFAULT_RATE_LIMIT_PER_HOUR),
    clock: options.clock ?? { now: (): number => Date.now() },
    realism: resolveRealism(options.realism),
  });
}
