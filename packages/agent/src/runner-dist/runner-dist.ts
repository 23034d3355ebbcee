/**
 * The host's runner versions: one read-only unpacked tree per verified release under `runnerDistPath`, named
 * `<version>-<sha256[:12]>`, shared by every lane that wants it (lanes copy from it), fetched once however many
 * lanes ask at the same time (a keyed mutex per release), and pruned when no lane's record names its version.
 * An operator-staged `<runnerDistPath>/<version>/` (the layout before verified downloads) is still used when an
 * intent carries no download, and is never pruned: it is the operator's.
 */
import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { KeyedMutex, RejectError, RejectReason, runnerArchiveFilename, runnerArchOf, validateRunnerVersion, type RunnerDownload } from "@lanekeeper/shared";
import { RunnerDistError } from "../errors.js";
import { cachedArchivePath, fetchArchive, type ArchiveFetchOptions } from "./archive-fetch.js";
import { extractTarGz } from "./safe-untar.js";

/** Options of {@link RunnerDist}. */
export interface RunnerDistOptions extends ArchiveFetchOptions {
  /** Where unpacked versions live (`runnerDistPath`). */
  readonly distPath: string;
  /** Largest total unpacked size. */
  readonly maxUnpackedBytes: number;
  /** The host's runner architecture for mirror file names. @default from process.arch */
  readonly arch?: "x64" | "arm64";
}

/** The directory name of a verified release. */
export function distDirName(version: string, sha256: string): string {
  return `${version}-${sha256.slice(0, 12)}`;
}

const VERIFIED_DIR = /^(\d{1,6}\.\d{1,6}\.\d{1,6})-([0-9a-f]{12})$/;

/** Unpacked runner versions: resolve (fetch, verify, unpack) and prune. */
export class RunnerDist {
  private readonly mutex = new KeyedMutex();
  /** Releases counted as in use while a lane is being built from them, so a concurrent prune keeps them. */
  private readonly busy = new Map<string, number>();

  constructor(readonly opts: RunnerDistOptions) {}

  /**
   * The unpacked tree of `version`: from `download` (verified, unpacked once, shared) or, without one, the tree
   * verified earlier or the operator-staged `<distPath>/<version>/`. Throws `RejectError(NOT_ALLOWED_ACTION)` when neither is there,
   * {@link RunnerDistError} when the download or the archive fails a check.
   */
  async resolve(version: string, download: RunnerDownload | undefined): Promise<string> {
    validateRunnerVersion(version);
    if (download === undefined) return this.staged(version);
    const name = distDirName(version, download.sha256);
    return this.mutex.run(name, async () => {
      const dir = join(this.opts.distPath, name);
      if (await isRunnerTree(dir)) return dir;
      await mkdir(this.opts.distPath, { recursive: true, mode: 0o755 });
      const arch = this.opts.arch ?? runnerArchOf(process.arch) ?? "x64";
      const archive = await fetchArchive(download, runnerArchiveFilename(arch, version), this.opts);
      const staging = join(this.opts.distPath, `.staging-${name}-${randomBytes(4).toString("hex")}`);
      await mkdir(staging, { mode: 0o755 });
      try {
        await extractTarGz(archive, staging, { maxBytes: this.opts.maxUnpackedBytes });
        if (!(await isRunnerTree(staging))) {
          throw new RunnerDistError("RUNNER_ARCHIVE_UNSAFE", `the archive of runner ${version} has no run.sh and config.sh at its top`);
        }
        await makeReadOnly(staging);
        await rm(dir, { recursive: true, force: true });
        await rename(staging, dir);
      } catch (err) {
        await rm(staging, { recursive: true, force: true });
        // An archive that fails to unpack is not kept: the next attempt fetches again.
        if (err instanceof RunnerDistError) await rm(archive, { force: true });
        throw err;
      }
      return dir;
    });
  }

  /** Run `fn` with `dir` (from {@link resolve}) protected from {@link prune}. */
  async using<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    this.busy.set(dir, (this.busy.get(dir) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const n = (this.busy.get(dir) ?? 1) - 1;
      if (n === 0) this.busy.delete(dir);
      else this.busy.set(dir, n);
    }
  }

  /**
   * `version` without a download: the tree this host verified when it last fetched that version, else an
   * operator-staged `<version>/`. GitHub lists only its current release, so an intent for an older version (a
   * rollback after a failed upgrade, a pin below the current release) carries no checksum; the copy verified
   * earlier is the trustworthy one. Two verified trees of one version (two different archives) are ambiguous:
   * the staged tree, else a refusal.
   */
  private async staged(version: string): Promise<string> {
    const verified = (await readdir(this.opts.distPath).catch(() => [] as string[])).filter((n) => VERIFIED_DIR.exec(n)?.[1] === version);
    if (verified.length === 1) {
      const dir = join(this.opts.distPath, verified[0]!);
      if (await isRunnerTree(dir)) return dir;
    }
    const dir = join(this.opts.distPath, version);
    if (!(await isRunnerTree(dir))) {
      throw new RejectError(
        RejectReason.NOT_ALLOWED_ACTION,
        verified.length > 1
          ? `runner version ${version} has ${verified.length} verified archives under ${this.opts.distPath} and the intent names no download to choose`
          : `runner version ${version} is not installed under ${this.opts.distPath} and the intent names no download`,
      );
    }
    return dir;
  }

  /**
   * Delete verified releases whose version no lane uses (`inUse`), their cached archives, and leftovers of
   * interrupted fetches and unpacks. Operator-staged `<version>/` directories are left alone. Returns the
   * names removed.
   */
  async prune(inUse: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    const names = await readdir(this.opts.distPath).catch(() => [] as string[]);
    for (const name of names) {
      const dir = join(this.opts.distPath, name);
      if (name.startsWith(".staging-")) {
        if (!this.mutex.busy(name.slice(9, -9))) {
          await rm(dir, { recursive: true, force: true });
          removed.push(name);
        }
        continue;
      }
      const m = VERIFIED_DIR.exec(name);
      if (!m || inUse.has(m[1]!) || this.busy.has(dir)) continue;
      await this.mutex.run(name, async () => {
        if (this.busy.has(dir)) return;
        await makeWritable(dir);
        await rm(dir, { recursive: true, force: true });
        removed.push(name);
      });
    }
    // Cached archives of pruned releases, and partial downloads nobody is resuming.
    const kept = new Set((await readdir(this.opts.distPath).catch(() => [] as string[])).map((n) => VERIFIED_DIR.exec(n)?.[2]).filter((x) => x !== undefined));
    for (const f of await readdir(this.opts.cacheDir).catch(() => [] as string[])) {
      const sha = /^([0-9a-f]{64})\.(tar\.gz|part)$/.exec(f)?.[1];
      if (sha === undefined || kept.has(sha.slice(0, 12))) continue;
      if ([...this.busy.keys()].some((d) => d.endsWith(sha.slice(0, 12)))) continue;
      await rm(cachedArchivePath(this.opts.cacheDir, sha), { force: true });
      await rm(join(this.opts.cacheDir, `${sha}.part`), { force: true });
    }
    return removed;
  }
}

async function isRunnerTree(dir: string): Promise<boolean> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return false;
  const run = await stat(join(dir, "run.sh")).catch(() => undefined);
  const cfg = await stat(join(dir, "config.sh")).catch(() => undefined);
  return run?.isFile() === true && cfg?.isFile() === true;
}

/** Files keep their exec bit but lose write; directories become 0555, so the shared tree is not edited by accident. */
async function makeReadOnly(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) await makeReadOnly(p);
    else await chmod(p, (await stat(p)).mode & 0o555);
  }
  await chmod(dir, 0o555);
}

async function makeWritable(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await chmod(dir, 0o755);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await makeWritable(join(dir, e.name));
  }
}
