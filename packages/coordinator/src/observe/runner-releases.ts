import type { Policy } from "@lanekeeper/shared";
import type { GitHubClient } from "../github/github-client.js";
import type { RunnerApplication } from "../github/github-types.js";

/**
 * GitHub's current runner release, as its downloads endpoint (`GET {scope}/actions/runners/downloads`) lists it:
 * one version, one archive per OS and architecture, each with its URL and (when GitHub sends it) SHA-256.
 * `runnerVersion: latest` resolves to `latest`; a pinned version is compared with it for the lag warning.
 */
export interface RunnerReleaseDownload {
  /** `linux`, `osx`, `win`. */
  readonly os: string;
  /** `x64`, `arm`, `arm64`. */
  readonly architecture: string;
  readonly url: string;
  readonly filename: string;
  /** Lower-case hex; absent when GitHub did not send `sha256_checksum`. */
  readonly sha256: string | undefined;
}

/** What one observation learnt about runner releases. */
export type RunnerReleaseObservation =
  | {
      readonly status: "ok";
      /** The version every download names, e.g. `2.336.0`. */
      readonly latest: string;
      readonly downloads: readonly RunnerReleaseDownload[];
    }
  | { readonly status: "error"; readonly code: string; readonly message: string };

const VERSION_IN_FILENAME = /-(\d{1,6}\.\d{1,6}\.\d{1,6})\.(?:tar\.gz|zip)$/;

/**
 * The release from the endpoint's entries: the version is read from the file names (GitHub's objects have no
 * version field), and every entry must agree on it, else the answer is not trusted (`RUNNER_RELEASE_INCONSISTENT`).
 */
export function runnerReleaseFromDownloads(entries: readonly RunnerApplication[]): RunnerReleaseObservation {
  const downloads: RunnerReleaseDownload[] = [];
  const versions = new Set<string>();
  for (const e of entries) {
    const m = VERSION_IN_FILENAME.exec(e.filename);
    if (m?.[1] === undefined) continue;
    versions.add(m[1]);
    downloads.push({ os: e.os, architecture: e.architecture, url: e.downloadUrl, filename: e.filename, sha256: e.sha256 });
  }
  if (versions.size !== 1) {
    return {
      status: "error",
      code: "RUNNER_RELEASE_INCONSISTENT",
      message: versions.size === 0 ? "the downloads endpoint listed no runner archive" : `the downloads endpoint names several versions (${[...versions].sort().join(", ")})`,
    };
  }
  return { status: "ok", latest: [...versions][0] as string, downloads };
}

/**
 * Read GitHub's current runner release for a plan, when a systemd pool needs it (`latest`, or a pin to compare for
 * the lag warning): one downloads request, for the first opted-in scope that has lanes of such a pool (the endpoint
 * answers the same for every scope). Never throws: a failure is an `error` observation, which leaves `latest` pools
 * alone.
 */
export async function observeRunnerReleases(github: Pick<GitHubClient, "listRunnerDownloads">, policy: Policy): Promise<RunnerReleaseObservation | undefined> {
  const systemdPools = new Set(Object.entries(policy.pools).filter(([, p]) => p.backend === "systemd").map(([name]) => name));
  const scope = policy.lanes
    .filter((l) => systemdPools.has(l.pool) && Object.hasOwn(policy.scopes, l.scope) && policy.scopes[l.scope]?.optIn === true)
    .map((l) => l.scope)
    .sort()[0];
  if (scope === undefined) return undefined;
  try {
    return runnerReleaseFromDownloads(await github.listRunnerDownloads(scope));
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return { status: "error", code: typeof e.code === "string" ? e.code : "GITHUB_API", message: typeof e.message === "string" ? e.message : String(err) };
  }
}
