/**
 * Runner release archives: the wire rules of a `RunnerDownload` (what the coordinator may put into a signed
 * create or upgrade intent), the archive file name GitHub, the emulator, mirrors and the agent's cache agree on,
 * and the origin check that keeps a stolen coordinator key from making agents fetch code from anywhere
 * (invariant 8: the agent pins where its runners come from, as it pins where they register).
 */
import { RejectError, RejectReason } from "./errors.js";
import { isSha256Hex } from "./hex.js";
import type { RunnerDownload } from "./gen/lanekeeper/v1/lane.js";
import { MAX_RUNNER_ARCHIVE_BYTES, MAX_URL_CHARS } from "./limits.js";

/**
 * The hosts GitHub serves runner releases from: `download_url` names github.com, which redirects to its
 * release-asset hosts. An agent follows a redirect only to an allowed origin.
 */
export const DEFAULT_RUNNER_DOWNLOAD_ORIGINS: readonly string[] = Object.freeze([
  "https://github.com",
  "https://objects.githubusercontent.com",
  "https://release-assets.githubusercontent.com",
]);

/** Runner architectures lanekeeper lanes run on, as GitHub's downloads endpoint names them. */
export type RunnerArch = "x64" | "arm64";
/** Every {@link RunnerArch}. */
export const RUNNER_ARCHES: readonly RunnerArch[] = Object.freeze(["x64", "arm64"] as const);

/** The runner architecture of a Node `process.arch` value (`x64`, `arm64`), or undefined when none fits. */
export function runnerArchOf(nodeArch: string): RunnerArch | undefined {
  return (RUNNER_ARCHES as readonly string[]).includes(nodeArch) ? (nodeArch as RunnerArch) : undefined;
}

/** The release archive's file name: `actions-runner-linux-<arch>-<version>.tar.gz` (GitHub's `filename`). */
export function runnerArchiveFilename(arch: RunnerArch, version: string): string {
  return `actions-runner-linux-${arch}-${version}.tar.gz`;
}


/**
 * Field caps of a `RunnerDownload` in a decoded intent (`PAYLOAD_MALFORMED`): a non-empty URL within
 * `MAX_URL_CHARS`, a SHA-256 of exactly 64 lower-case hex characters, a size within `MAX_RUNNER_ARCHIVE_BYTES`.
 * Where the URL may point is the agent's decision ({@link checkDownloadUrl}).
 */
export function checkRunnerDownloadFields(what: string, d: RunnerDownload): void {
  if (d.url.length === 0 || d.url.length > MAX_URL_CHARS) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `${what}.url must be 1 to ${MAX_URL_CHARS} characters (has ${d.url.length})`);
  }
  if (!isSha256Hex(d.sha256)) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `${what}.sha256 must be 64 lower-case hex characters`);
  }
  if (!Number.isSafeInteger(d.sizeBytes) || d.sizeBytes < 0 || d.sizeBytes > MAX_RUNNER_ARCHIVE_BYTES) {
    throw new RejectError(RejectReason.PAYLOAD_MALFORMED, `${what}.sizeBytes must be 0 (unknown) to ${MAX_RUNNER_ARCHIVE_BYTES}`);
  }
}

/**
 * Refuse (`DOWNLOAD_ORIGIN_NOT_ALLOWED`) a download URL whose origin is not exactly one of `origins` (bare
 * origins as `githubOriginProblem` checks them), or that carries credentials, a query or a fragment, or that is
 * not written as `<origin>/<path>` exactly (so no parser leniency makes another server pass for an allowed
 * one). Used for the intent's URL and for every redirect the agent follows. Returns the URL.
 */
export function checkDownloadUrl(url: string, origins: readonly string[]): string {
  let problem: string | undefined;
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    problem = "it is not a URL";
  }
  if (u !== undefined) {
    if (u.username !== "" || u.password !== "") problem = "it carries credentials (userinfo)";
    else if (u.search !== "" || u.hash !== "" || /[?#]/.test(url)) problem = "it has a query or fragment";
    else if (!origins.includes(u.origin)) problem = `its origin ${u.origin} is not in runnerDownloads.origins`;
    else if (!url.startsWith(`${u.origin}/`) || url.length > MAX_URL_CHARS) problem = `it must be written as ${u.origin}/<path>`;
  }
  if (problem === undefined) return url;
  const shown = JSON.stringify(url.length > 120 ? `${url.slice(0, 120)}…` : url);
  throw new RejectError(
    RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED,
    `runner download refused: ${problem}; this host fetches runners only from ${origins.join(", ") || "(no origin allowed)"}; got ${shown}`,
  );
}
