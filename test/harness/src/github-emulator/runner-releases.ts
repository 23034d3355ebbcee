/**
 * The emulator's runner releases: what `GET {scope}/actions/runners/downloads` lists (the newest published
 * version, as GitHub lists only its current release) and the archives it points to. Each published version is a REAL tarball of the runner emulator (test/harness/runner-emulator) whose
 * `RUNNER_VERSION` is that version, so a lane unpacked from it reports the version to the emulator when it
 * connects. Archives are built on first use, served under `/_downloads/v<version>/<filename>` with `Range`
 * support, and two faults serve the agent's tests: a wrong advertised checksum, and responses cut short after
 * a number of bytes (for the resume path).
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { runnerEmulatorDir } from "../runner-image.js";
import { ADVERTISED_RUNNER_VERSION } from "./limits.js";

/** Linux architectures the emulator publishes archives for. */
export const RELEASE_ARCHES = ["x64", "arm64"] as const;

/** One published archive. */
interface Archive {
  readonly bytes: Buffer;
  readonly sha256: string;
}

/** Fault knobs of the downloads (control API `POST /_emulator/runner-releases/faults`). */
export interface ReleaseFaults {
  /** Advertise a checksum that does not match the archive. */
  wrongChecksum?: boolean;
  /** Cut the next `count` archive responses after `afterBytes` bytes. */
  truncate?: { count: number; afterBytes: number };
}

/** A published version, as the control API shows it. */
export interface ReleaseView {
  version: string;
  files: { filename: string; sha256: string; size: number }[];
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, "0")}\0`;
}

function tarHeader(name: string, size: number, mode: number, type: "0" | "5"): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`runner emulator path too long for a plain ustar name: ${name}`);
  const h = Buffer.alloc(512);
  h.write(name, 0, "utf8");
  h.write(octal(mode, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(0, 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(type, 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

/** A listener that cannot start: what a broken release looks like to the host (it exits 1 at once, every time). */
const BROKEN_LISTENER = "#!/bin/sh\necho 'Runner.Listener: broken release' >&2\nexit 1\n";

/**
 * A gzip'd tar of the runner emulator reporting `version`, with entries under `./` like GitHub's archives; with
 * `broken`, its `bin/Runner.Listener` exits 1 at once (a release that does not start).
 */
export function buildRunnerArchive(version: string, dir = runnerEmulatorDir, broken = false): Buffer {
  const parts: Buffer[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const st = statSync(join(dir, r));
      if (st.isDirectory()) {
        parts.push(tarHeader(`./${r}/`, 0, 0o755, "5"));
        walk(r);
      } else if (st.isFile()) {
        let body = readFileSync(join(dir, r));
        if (r === "lib/constants.mjs") {
          body = Buffer.from(body.toString("utf8").replace(/export const RUNNER_VERSION = "[^"]*";/, `export const RUNNER_VERSION = "${version}";`));
        }
        if (broken && r === "bin/Runner.Listener") body = Buffer.from(BROKEN_LISTENER);
        parts.push(tarHeader(`./${r}`, body.length, st.mode & 0o111 ? 0o755 : 0o644, "0"), body, Buffer.alloc((512 - (body.length % 512)) % 512));
      }
    }
  };
  walk("");
  parts.push(Buffer.alloc(1024));
  // mtime 0 and sorted entries: the same version always builds the same bytes.
  return gzipSync(Buffer.concat(parts));
}

/** The releases an emulator publishes. */
export class RunnerReleases {
  private readonly versions: string[] = [];
  private readonly archives = new Map<string, Archive>();
  private readonly broken = new Set<string>();
  private faults: ReleaseFaults = {};

  constructor(initial: readonly string[] = [ADVERTISED_RUNNER_VERSION]) {
    for (const v of initial) this.publish(v);
  }

  /**
   * Publish `version` (idempotent). The newest comes first in `downloads`. A `broken` release's listener exits 1
   * at once, for tests of upgrades that do not start (fixed at first publication).
   */
  publish(version: string, opts: { broken?: boolean } = {}): void {
    if (!/^\d{1,6}\.\d{1,6}\.\d{1,6}$/.test(version)) throw new Error(`runner version ${JSON.stringify(version)} must look like 2.330.0`);
    if (opts.broken === true && !this.versions.includes(version)) this.broken.add(version);
    if (!this.versions.includes(version)) this.versions.push(version);
    this.versions.sort((a, b) => compareVersions(b, a));
  }

  /** Published versions, newest first. */
  list(): readonly string[] {
    return this.versions;
  }

  /** The newest published version. */
  latest(): string {
    return this.versions[0] ?? ADVERTISED_RUNNER_VERSION;
  }

  setFaults(f: ReleaseFaults): ReleaseFaults {
    this.faults = { ...this.faults, ...f };
    return this.faults;
  }

  clearFaults(): void {
    this.faults = {};
  }

  private archive(version: string): Archive {
    let a = this.archives.get(version);
    if (a === undefined) {
      const bytes = buildRunnerArchive(version, runnerEmulatorDir, this.broken.has(version));
      a = { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
      this.archives.set(version, a);
    }
    return a;
  }

  /** File name of a published linux archive. */
  static filename(arch: string, version: string): string {
    return `actions-runner-linux-${arch}-${version}.tar.gz`;
  }

  /** The control API's view. */
  views(): ReleaseView[] {
    return this.versions.map((version) => {
      const a = this.archive(version);
      return { version, files: RELEASE_ARCHES.map((arch) => ({ filename: RunnerReleases.filename(arch, version), sha256: a.sha256, size: a.bytes.length })) };
    });
  }

  /**
   * The linux `runner-application` entries of the newest published version only, as GitHub lists its current
   * release and nothing older, with `sha256_checksum` (wrong on purpose under the `wrongChecksum` fault). Older
   * versions' archives stay downloadable at their URLs, as GitHub's release assets do.
   */
  downloadEntries(webUrl: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const version of this.versions.slice(0, 1)) {
      const a = this.archive(version);
      for (const arch of RELEASE_ARCHES) {
        const filename = RunnerReleases.filename(arch, version);
        out.push({
          os: "linux",
          architecture: arch,
          download_url: `${webUrl}/_downloads/v${version}/${filename}`,
          filename,
          sha256_checksum: this.faults.wrongChecksum ? createHash("sha256").update(`wrong:${a.sha256}`).digest("hex") : a.sha256,
        });
      }
    }
    return out;
  }

  /** Serve `/_downloads/v<version>/<filename>`; returns false when the path is not a published archive. */
  serve(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const m = /^\/_downloads\/v(\d+\.\d+\.\d+)\/actions-runner-linux-(x64|arm64)-(\d+\.\d+\.\d+)\.tar\.gz$/.exec(path);
    if (!m || m[1] !== m[3] || !this.versions.includes(m[1]!) || (req.method !== "GET" && req.method !== "HEAD")) return false;
    const body = this.archive(m[1]!).bytes;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    let start = 0;
    let end = body.length - 1;
    let status = 200;
    if (range) {
      start = Number(range[1]);
      end = range[2] === "" ? end : Math.min(end, Number(range[2]));
      if (start > end) {
        res.writeHead(416, { "content-range": `bytes */${body.length}` }).end();
        return true;
      }
      status = 206;
    }
    const slice = body.subarray(start, end + 1);
    const headers: Record<string, string | number> = { "content-type": "application/octet-stream", "content-length": slice.length, "accept-ranges": "bytes" };
    if (status === 206) headers["content-range"] = `bytes ${start}-${end}/${body.length}`;
    res.writeHead(status, headers);
    if (req.method === "HEAD") {
      res.end();
      return true;
    }
    const t = this.faults.truncate;
    if (t !== undefined && t.count > 0) {
      this.faults = { ...this.faults, truncate: { ...t, count: t.count - 1 } };
      res.write(slice.subarray(0, Math.min(t.afterBytes, slice.length)));
      // Cut the connection mid-body, as a dropped download looks to the client.
      setTimeout(() => res.destroy(), 10);
      return true;
    }
    res.end(slice);
    return true;
  }
}

/** Compare dotted numeric versions. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
