/**
 * Fetching a runner release archive into the download cache, verified. The file grows as `<cache>/<sha256>.part`
 * and is resumed with an HTTP `Range` request after a cut connection (or an agent restart); only when its
 * SHA-256 (and size, when the intent gave one) match does it become `<cache>/<sha256>.tar.gz`. The request and
 * every redirect must stay on the configured origins, and the body may not grow past the size cap. An
 * air-gapped host reads the archive from its mirror directory or mirror URL instead; the checksum is still the
 * one in the signed intent, so a mirror cannot substitute another runner.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { copyFile, mkdir, open, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { checkDownloadUrl, isRejectError, type RunnerDownload } from "@lanekeeper/shared";
import { RunnerDistError } from "../errors.js";

/** Where and how archives are fetched. */
export interface ArchiveFetchOptions {
  /** The download cache directory (created 0700). */
  readonly cacheDir: string;
  /** Origins a download URL and its redirects may name. */
  readonly origins: readonly string[];
  /** Largest archive accepted. */
  readonly maxArchiveBytes: number;
  /** Air-gapped: a directory holding `actions-runner-linux-<arch>-<version>.tar.gz` files. */
  readonly mirrorDir?: string | undefined;
  /** Air-gapped: fetch `<prefix><file name>` instead of the intent's URL. */
  readonly mirrorUrlPrefix?: string | undefined;
  /** Attempts per fetch (each resumes where the last stopped). @default 4 */
  readonly attempts?: number;
  /** Per-request timeout. @default 300000 */
  readonly requestTimeoutMs?: number;
  /** Delay before a retry. @default 500 */
  readonly retryDelayMs?: number;
}

const MAX_REDIRECTS = 5;

/** Hex SHA-256 of a file. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** The path a verified archive of `sha256` has in the cache. */
export function cachedArchivePath(cacheDir: string, sha256: string): string {
  return join(cacheDir, `${sha256}.tar.gz`);
}

async function sizeOf(path: string): Promise<number | undefined> {
  const st = await stat(path).catch(() => undefined);
  return st?.isFile() ? st.size : undefined;
}

/**
 * Make the archive of `download` available in the cache, verified, and return its path. `fileName` is the
 * archive's release file name (for the mirrors). Throws {@link RunnerDistError}: `RUNNER_CHECKSUM_MISMATCH`,
 * `RUNNER_ARCHIVE_TOO_LARGE`, `RUNNER_DOWNLOAD_FAILED`; or a `RejectError(DOWNLOAD_ORIGIN_NOT_ALLOWED)` for a
 * redirect off the allowed origins.
 */
export async function fetchArchive(download: RunnerDownload, fileName: string, opts: ArchiveFetchOptions): Promise<string> {
  await mkdir(opts.cacheDir, { recursive: true, mode: 0o700 });
  const final = cachedArchivePath(opts.cacheDir, download.sha256);
  if ((await sizeOf(final)) !== undefined) {
    if ((await sha256File(final)) === download.sha256) return final;
    await rm(final, { force: true });
  }
  const part = join(opts.cacheDir, `${download.sha256}.part`);
  const cap = download.sizeBytes > 0 ? Math.min(download.sizeBytes, opts.maxArchiveBytes) : opts.maxArchiveBytes;
  if (download.sizeBytes > opts.maxArchiveBytes) {
    throw new RunnerDistError("RUNNER_ARCHIVE_TOO_LARGE", `runner archive is ${download.sizeBytes} bytes, over runnerDownloads.maxArchiveBytes (${opts.maxArchiveBytes})`);
  }
  const mirrored = opts.mirrorDir !== undefined ? join(opts.mirrorDir, fileName) : undefined;
  if (mirrored !== undefined && (await sizeOf(mirrored)) !== undefined) {
    const size = (await sizeOf(mirrored))!;
    if (size > cap) throw new RunnerDistError("RUNNER_ARCHIVE_TOO_LARGE", `mirrored ${fileName} is ${size} bytes, over the cap of ${cap}`);
    await copyFile(mirrored, part);
  } else {
    const url = opts.mirrorUrlPrefix !== undefined ? `${opts.mirrorUrlPrefix}${fileName}` : download.url;
    // A configured mirror prefix is the operator's own origin; the intent's URL must be on the allowlist.
    const origins = opts.mirrorUrlPrefix !== undefined ? [new URL(opts.mirrorUrlPrefix).origin] : opts.origins;
    await downloadResumable(url, part, cap, origins, opts);
  }
  await verify(part, download, cap);
  await rename(part, final);
  return final;
}

async function verify(part: string, download: RunnerDownload, cap: number): Promise<void> {
  const size = (await sizeOf(part)) ?? 0;
  if (size > cap) {
    await rm(part, { force: true });
    throw new RunnerDistError("RUNNER_ARCHIVE_TOO_LARGE", `runner archive is over the cap of ${cap} bytes`);
  }
  if (download.sizeBytes > 0 && size !== download.sizeBytes) {
    await rm(part, { force: true });
    throw new RunnerDistError("RUNNER_CHECKSUM_MISMATCH", `runner archive is ${size} bytes, the intent says ${download.sizeBytes}`);
  }
  const got = await sha256File(part);
  if (got !== download.sha256) {
    // Never resume from bytes that hashed wrong: the next attempt starts over.
    await rm(part, { force: true });
    throw new RunnerDistError("RUNNER_CHECKSUM_MISMATCH", `runner archive SHA-256 is ${got}, the intent says ${download.sha256}; nothing was unpacked`);
  }
}

/** GET with redirects followed by hand, each checked against `origins`. */
async function get(url: string, headers: Record<string, string>, origins: readonly string[], timeoutMs: number): Promise<Response> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    checkDownloadUrl(current, origins);
    const res = await fetch(current, { headers, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    if (res.status >= 300 && res.status < 400 && res.headers.get("location")) {
      await res.body?.cancel();
      current = new URL(res.headers.get("location")!, current).toString();
      continue;
    }
    return res;
  }
  throw new RunnerDistError("RUNNER_DOWNLOAD_FAILED", `runner download redirected more than ${MAX_REDIRECTS} times`);
}

/** Download `url` into `part`, resuming what is there; retries cut or failed transfers. */
async function downloadResumable(url: string, part: string, cap: number, origins: readonly string[], opts: ArchiveFetchOptions): Promise<void> {
  const attempts = opts.attempts ?? 4;
  let lastErr: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const have = (await sizeOf(part)) ?? 0;
      if (have >= cap && have > 0) return; // complete, or over the cap: verify() decides.
      const res = await get(url, have > 0 ? { range: `bytes=${have}-` } : {}, origins, opts.requestTimeoutMs ?? 300_000);
      if (res.status === 416 && have > 0) {
        await res.body?.cancel();
        return; // the server has nothing past what we hold: verify it.
      }
      if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel();
        throw new RunnerDistError("RUNNER_DOWNLOAD_FAILED", `runner download answered HTTP ${res.status}`);
      }
      // A 200 to a Range request is the whole file again: start over.
      const append = res.status === 206 && have > 0;
      const fh = await open(part, append ? "a" : "w", 0o600);
      let written = append ? have : 0;
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          written += chunk.length;
          if (written > cap) throw new RunnerDistError("RUNNER_ARCHIVE_TOO_LARGE", `runner download grew past the cap of ${cap} bytes`);
          await fh.write(chunk);
        }
      } finally {
        await fh.close();
      }
      const expected = Number(res.headers.get("content-length") ?? "NaN");
      if (Number.isFinite(expected) && written - (append ? have : 0) < expected) {
        throw new RunnerDistError("RUNNER_DOWNLOAD_FAILED", "runner download was cut short");
      }
      return;
    } catch (err) {
      if (isRejectError(err)) throw err;
      if (err instanceof RunnerDistError && err.code === "RUNNER_ARCHIVE_TOO_LARGE") {
        await rm(part, { force: true });
        throw err;
      }
      lastErr = err;
      if (attempt < attempts) await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 500));
    }
  }
  throw lastErr instanceof RunnerDistError
    ? lastErr
    : new RunnerDistError("RUNNER_DOWNLOAD_FAILED", `runner download failed after ${attempts} attempts: ${(lastErr as Error)?.message ?? "unknown error"}`, { cause: lastErr });
}
