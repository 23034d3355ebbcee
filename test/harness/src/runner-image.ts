/**
 * The runner emulator on disk and as a local podman image.
 *
 * `runnerEmulatorDir` is a self-contained runner distribution (`config.sh`, `run.sh`, `bin/Runner.Listener`,
 * `bin/Runner.Worker`, …) that needs only `node`: copy it anywhere, as the systemd runtime does per lane.
 * `buildRunnerImage()` packs it, with the host's `node`, bash and their libraries, into a podman image built
 * from local files only (test/harness/image/build-runner-image.sh), tagged by a hash of its content.
 */
import { fileURLToPath } from "node:url";
import { LauncherError } from "./launcher-error.js";
import { runCommand } from "./process-util.js";

/** Absolute path of the runner emulator directory (test/harness/runner-emulator). */
export const runnerEmulatorDir: string = fileURLToPath(new URL("../runner-emulator", import.meta.url));

/** Absolute path of the image build script. */
export const runnerImageBuildScript: string = fileURLToPath(new URL("../image/build-runner-image.sh", import.meta.url));

/**
 * Longest time a build may take. A cold build on the 2-core test machine takes about 10 s (hashing the node
 * binary, packing ~100 MB, `podman import`); the margin covers a loaded machine and the build lock shared by
 * parallel test files.
 */
export const RUNNER_IMAGE_BUILD_TIMEOUT_MS = 300_000;

/** The image {@link buildRunnerImage} built or found. */
export interface RunnerImage {
  /** Tag reference, `localhost/lanekeeper/runner-emulator:<content hash>`. */
  reference: string;
  /** Manifest digest, `sha256:<hex>` (what lanekeeper allowlists). */
  digest: string;
  /** Digest reference, `localhost/lanekeeper/runner-emulator@sha256:<hex>`; podman can create containers from it. */
  digestReference: string;
  /** Image id (`sha256:`-less hex, as `podman image inspect --format '{{.Id}}'` prints it). */
  id: string;
  /** True when this call built the image; false when an image with the same content hash already existed. */
  built: boolean;
}

/** Options of {@link buildRunnerImage}. */
export interface BuildRunnerImageOptions {
  /** Image repository. @default "localhost/lanekeeper/runner-emulator" */
  repository?: string;
  /** Runner emulator directory to pack. @default {@link runnerEmulatorDir} */
  emulatorDir?: string;
  /** Give up after this long. @default {@link RUNNER_IMAGE_BUILD_TIMEOUT_MS} */
  timeoutMs?: number;
}

/** Parses the script's `key=value` lines. */
export function parseBuildOutput(stdout: string): RunnerImage {
  const values = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) values.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const need = (key: string): string => {
    const v = values.get(key);
    if (v === undefined || v === "") {
      throw new LauncherError("COMMAND_FAILED", `build-runner-image.sh printed no ${key}; output: ${stdout.slice(-500)}`);
    }
    return v;
  };
  const digest = need("digest");
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new LauncherError("COMMAND_FAILED", `build-runner-image.sh printed a malformed digest: ${digest}`);
  }
  return {
    reference: need("reference"),
    digest,
    digestReference: need("digestReference"),
    id: need("id"),
    built: need("built") === "true",
  };
}

/**
 * Builds the runner emulator image with podman, or finds it when an image with the same content hash
 * exists (idempotent; concurrent calls serialize on a lock file). Needs root, podman and the engine config
 * of `scripts/setup-machine.sh`. Rejects with {@link LauncherError} `COMMAND_FAILED` when the build fails.
 */
export async function buildRunnerImage(options: BuildRunnerImageOptions = {}): Promise<RunnerImage> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.repository !== undefined) env.LK_RUNNER_IMAGE_REPO = options.repository;
  if (options.emulatorDir !== undefined) env.LK_RUNNER_EMULATOR_DIR = options.emulatorDir;
  const result = await runCommand("bash", [runnerImageBuildScript], {
    env,
    timeoutMs: options.timeoutMs ?? RUNNER_IMAGE_BUILD_TIMEOUT_MS,
  });
  if (result.code !== 0) {
    throw new LauncherError(
      "COMMAND_FAILED",
      `build-runner-image.sh exited ${String(result.code ?? result.signal)}: ${result.stderr.slice(-1000)}`,
    );
  }
  return parseBuildOutput(result.stdout);
}
