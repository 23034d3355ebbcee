/**
 * Which build of lanekeeper is running: its version and git commit, for `lanekeeper --version`,
 * `lanekeeper-agent --version` and the agent's inventories.
 *
 * A release bundle (esbuild, `npm run dist`) defines the two global identifiers below, so the answer is baked in
 * and nothing is read at run time. Run from a checkout, the version comes from the package's `package.json` and
 * the commit from `git rev-parse --short HEAD` in the package's directory, each only when asked for. `shared` is
 * pure: the caller hands in the file reader and the process runner ({@link CheckoutProbe}).
 */

// Defined by the bundler (esbuild `define`); absent when running from a checkout.
declare const __LANEKEEPER_VERSION__: string | undefined;
declare const __LANEKEEPER_COMMIT__: string | undefined;

/** What `--version` reports. */
export interface BuildInfo {
  /** The package version (`0.1.0`), or `unknown`. */
  readonly version: string;
  /** The short git commit (`abc1234`), or `unknown`. */
  readonly commit: string;
}

/** Value of a field that could not be found out. */
export const UNKNOWN_BUILD_FIELD = "unknown";

/** Longest wait for `git rev-parse` in a checkout: `--version` must answer at once even on a slow disk. */
export const GIT_COMMIT_TIMEOUT_MS = 2_000;

/** How a checkout is read when the bundler defined nothing: a caller-provided reader and process runner. */
export interface CheckoutProbe {
  /** The package's directory, holding its `package.json`. */
  readonly packageDir: string;
  /** Read a file as UTF-8 (throws when it cannot). */
  readonly readFile: (path: string) => string;
  /** Run a program synchronously (Node's `spawnSync` fits): its exit status and standard output. */
  readonly run: (
    command: string,
    args: readonly string[],
    options: { readonly cwd: string; readonly timeout: number },
  ) => { readonly status: number | null; readonly stdout: string | Buffer | null; readonly error?: Error | undefined };
}

/** The bundler's version, when it defined one. */
function definedVersion(): string | undefined {
  return typeof __LANEKEEPER_VERSION__ !== "undefined" && __LANEKEEPER_VERSION__ !== "" ? __LANEKEEPER_VERSION__ : undefined;
}

/** The bundler's commit, when it defined one. */
function definedCommit(): string | undefined {
  return typeof __LANEKEEPER_COMMIT__ !== "undefined" && __LANEKEEPER_COMMIT__ !== "" ? __LANEKEEPER_COMMIT__ : undefined;
}

/** The version in `<packageDir>/package.json`, or undefined. */
function checkoutVersion(probe: CheckoutProbe): string | undefined {
  try {
    const pkg = JSON.parse(probe.readFile(`${probe.packageDir.replace(/\/$/, "")}/package.json`)) as { version?: unknown };
    return typeof pkg.version === "string" && pkg.version !== "" ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/** `git rev-parse --short HEAD` in the package's directory, or undefined (no git, not a checkout, too slow). */
function checkoutCommit(probe: CheckoutProbe): string | undefined {
  try {
    const r = probe.run("git", ["rev-parse", "--short", "HEAD"], { cwd: probe.packageDir, timeout: GIT_COMMIT_TIMEOUT_MS });
    if (r.error !== undefined || r.status !== 0 || r.stdout === null) return undefined;
    const out = r.stdout.toString().trim();
    return /^[0-9a-f]{4,40}$/.test(out) ? out : undefined;
  } catch {
    return undefined;
  }
}

/** The running version only (no process is started): the bundler's, else the checkout's `package.json`. */
export function buildVersion(probe: CheckoutProbe): string {
  return definedVersion() ?? checkoutVersion(probe) ?? UNKNOWN_BUILD_FIELD;
}

/**
 * The running build's version and commit: the bundler's defines when present, else read from the checkout
 * (`git` runs only here, with a {@link GIT_COMMIT_TIMEOUT_MS} timeout), else {@link UNKNOWN_BUILD_FIELD}.
 */
export function buildInfo(probe: CheckoutProbe): BuildInfo {
  return { version: buildVersion(probe), commit: definedCommit() ?? checkoutCommit(probe) ?? UNKNOWN_BUILD_FIELD };
}

/** The `--version` line: `lanekeeper 0.1.0 (commit abc1234)`. */
export function formatBuildInfo(program: string, info: BuildInfo): string {
  return `${program} ${info.version} (commit ${info.commit})`;
}
