/**
 * Where a systemd lane's runner comes from: the scope's runner downloads (GitHub's `runner-application` list,
 * read with its ETag) give the archive's URL and SHA-256 for the pinned version and the host's architecture,
 * and both go into the signed create intent. The agent fetches only from its own allowed origins (or its
 * mirror) and verifies the checksum before unpacking. A version GitHub does not list (it lists its current
 * release) is sent without a download: the agent then uses the copy it verified when it last fetched that version,
 * or an operator-staged `<runnerDistPath>/<version>/`.
 */
import { Backend, isSha256Hex, runnerArchiveFilename, runnerArchOf, type LaneSpec, type RunnerDownload } from "@lanekeeper/shared";
import type { RunnerApplication } from "../github/github-types.js";

/**
 * The download of `spec`'s runner version for a host of `hostArch` (Node's `process.arch` naming, as agents
 * report it; `x64` when unknown), or undefined when the spec needs none (container lanes, a download already
 * set) or the list has no linux archive of that version with a well-formed checksum.
 */
export function runnerDownloadFor(spec: LaneSpec, apps: readonly RunnerApplication[], hostArch: string | undefined): RunnerDownload | undefined {
  if (spec.backend !== Backend.BACKEND_SYSTEMD || spec.runnerVersion === "") return undefined;
  if (spec.runnerDownload !== undefined) return spec.runnerDownload;
  const filename = runnerArchiveFilename(runnerArchOf(hostArch ?? "") ?? "x64", spec.runnerVersion);
  const app = apps.find((x) => x.os === "linux" && x.filename === filename);
  if (app?.sha256 === undefined || !isSha256Hex(app.sha256)) return undefined;
  return { url: app.downloadUrl, sha256: app.sha256, sizeBytes: 0 };
}
