/**
 * Unpacking a runner release (`.tar.gz`) without trusting it. The archive's checksum was verified before this
 * runs, so a bad entry means a bad release or a compromised mirror, not line noise: any entry that could write
 * outside the destination or plant something other than files, directories and in-tree links refuses the whole
 * archive. Refused: absolute names, `..` components, symlinks whose target is absolute or leaves the tree,
 * hardlinks to anything but an earlier regular file of the archive, character and block devices, FIFOs, unknown
 * entry types, duplicate names, and archives over the size or entry caps. A small reader (ustar, GNU long names,
 * pax `path`/`linkpath`/`size`) instead of a dependency, because every entry type it does not know is a refusal.
 */
import { createReadStream } from "node:fs";
import { chmod, link, mkdir, open, symlink } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { createGunzip } from "node:zlib";
import { RunnerDistError } from "../errors.js";

/** Caps of {@link extractTarGz}. */
export interface UntarLimits {
  /** Largest total size of the unpacked files. */
  readonly maxBytes: number;
  /** Most entries. @default 100000 */
  readonly maxEntries?: number;
}

/** What an unpack wrote. */
export interface UntarSummary {
  readonly files: number;
  readonly bytes: number;
}

function unsafe(name: string, why: string): never {
  throw new RunnerDistError("RUNNER_ARCHIVE_UNSAFE", `runner archive entry ${JSON.stringify(name.slice(0, 200))} refused: ${why}`);
}

/** Normalize an entry name to a relative path inside the tree, or refuse it. */
export function safeEntryPath(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\\]/.test(name)) unsafe(name, "control character or backslash in the name");
  if (name.startsWith("/")) unsafe(name, "absolute path");
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) unsafe(name, "'..' component");
  return parts.join("/");
}

/** A byte source over an async iterable of chunks, reading exact lengths. */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private done = false;

  constructor(src: AsyncIterable<Buffer>) {
    this.it = src[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes, or fewer at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Hand `n` bytes to `sink` in chunks (a file body), without holding it all. */
  async pipe(n: number, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0) {
        if (this.done) throw new RunnerDistError("RUNNER_ARCHIVE_UNSAFE", "runner archive is truncated");
        const r = await this.it.next();
        if (r.done) {
          this.done = true;
          continue;
        }
        this.buf = r.value;
      }
      const take = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(take.length);
      left -= take.length;
      await sink(take);
    }
  }
}

function field(h: Buffer, off: number, len: number): string {
  const s = h.subarray(off, off + len).toString("utf8");
  const nul = s.indexOf("\0");
  return nul === -1 ? s : s.slice(0, nul);
}

function octalField(h: Buffer, off: number, len: number): number {
  const raw = h.subarray(off, off + len);
  // GNU base-256 for sizes over 8 GiB: far over any cap, refused.
  if ((raw[0] ?? 0) & 0x80) return Number.MAX_SAFE_INTEGER;
  const s = field(h, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new RunnerDistError("RUNNER_ARCHIVE_UNSAFE", "runner archive has a malformed header");
  return Number.parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] ?? 0);
  return octalField(h, 148, 8) === sum;
}

/** pax extended header records: `<len> <key>=<value>\n`. */
function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp === -1) break;
    const len = Number.parseInt(data.subarray(off, sp).toString("ascii"), 10);
    if (!Number.isSafeInteger(len) || len <= 0 || off + len > data.length) throw new RunnerDistError("RUNNER_ARCHIVE_UNSAFE", "runner archive has a malformed pax header");
    const rec = data.subarray(sp + 1, off + len - 1).toString("utf8");
    const eq = rec.indexOf("=");
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

/**
 * Unpack `archive` (gzip-compressed tar) into `dest`, which must exist and be empty. Throws
 * {@link RunnerDistError} (`RUNNER_ARCHIVE_UNSAFE`, `RUNNER_ARCHIVE_TOO_LARGE`) on the first bad entry; the
 * caller deletes `dest` then (it is a staging directory).
 */
export async function extractTarGz(archive: string, dest: string, limits: UntarLimits): Promise<UntarSummary> {
  const maxEntries = limits.maxEntries ?? 100_000;
  const gunzip = createReadStream(archive).pipe(createGunzip());
  const reader = new ChunkReader(gunzip as AsyncIterable<Buffer>);
  const seen = new Map<string, "file" | "dir" | "link">();
  let bytes = 0;
  let entries = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  const readBody = async (size: number, cap: number): Promise<Buffer> => {
    if (size > cap) throw new RunnerDistError("RUNNER_ARCHIVE_UNSAFE", "runner archive has an oversized metadata entry");
    const body = await reader.read(size);
    if (body.length < size) throw new RunnerDistError("RUNNER_ARCHIVE_UNSAFE", "runner archive is truncated");
    await reader.read((512 - (size % 512)) % 512);
    return body;
  };
  try {
    for (;;) {
      const h = await reader.read(512);
      if (h.length === 0 || h.every((b) => b === 0)) break;
      if (h.length < 512) throw new RunnerDistError("RUNNER_ARCHIVE_UNSAFE", "runner archive is truncated");
      if (!checksumOk(h)) throw new RunnerDistError("RUNNER_ARCHIVE_UNSAFE", "runner archive has a header with a bad checksum");
      if (++entries > maxEntries) throw new RunnerDistError("RUNNER_ARCHIVE_TOO_LARGE", `runner archive has more than ${maxEntries} entries`);
      const type = String.fromCharCode(h[156] ?? 0);
      let size = octalField(h, 124, 12);
      if (type === "L" || type === "K") {
        const v = field(await readBody(size, 64 * 1024), 0, size);
        if (type === "L") longName = v;
        else longLink = v;
        continue;
      }
      if (type === "x") {
        pax = parsePax(await readBody(size, 64 * 1024));
        continue;
      }
      if (type === "g") {
        await readBody(size, 64 * 1024);
        continue;
      }
      const prefix = field(h, 345, 155);
      const rawName = pax.get("path") ?? longName ?? (prefix !== "" ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
      const rawLink = pax.get("linkpath") ?? longLink ?? field(h, 157, 100);
      if (pax.has("size")) size = Number(pax.get("size"));
      pax = new Map();
      longName = undefined;
      longLink = undefined;
      const rel = safeEntryPath(rawName);
      if (rel === "") {
        if (type !== "5") unsafe(rawName, "an entry that is the tree itself");
        continue;
      }
      const parentRel = posix.dirname(rel);
      if (parentRel !== "." && seen.has(parentRel) && seen.get(parentRel) !== "dir") unsafe(rawName, "a parent that is not a directory");
      for (let p = parentRel; p !== "."; p = posix.dirname(p)) {
        if (seen.get(p) === "link") unsafe(rawName, "a path through a link");
      }
      if (seen.has(rel) && !(type === "5" && seen.get(rel) === "dir")) unsafe(rawName, "a duplicate name");
      const target = join(dest, rel);
      const mode = octalField(h, 100, 8) & 0o777;
      switch (type) {
        case "0":
        case "\0":
        case "7": {
          if (!Number.isSafeInteger(size) || size < 0) unsafe(rawName, "a bad size");
          bytes += size;
          if (bytes > limits.maxBytes) throw new RunnerDistError("RUNNER_ARCHIVE_TOO_LARGE", `runner archive unpacks to more than ${limits.maxBytes} bytes`);
          await mkdir(dirname(target), { recursive: true, mode: 0o755 });
          // wx: never follow or overwrite something already there.
          const fh = await open(target, "wx", 0o644);
          try {
            await reader.pipe(size, async (c) => {
              await fh.write(c);
            });
          } finally {
            await fh.close();
          }
          // Executables stay executable; nothing is setuid, setgid or writable by others.
          await chmod(target, mode & 0o111 ? 0o755 : 0o644);
          await reader.read((512 - (size % 512)) % 512);
          seen.set(rel, "file");
          break;
        }
        case "5":
          await mkdir(target, { recursive: true, mode: 0o755 });
          seen.set(rel, "dir");
          await readBody(size, 0);
          break;
        case "2": {
          if (rawLink === "" || rawLink.startsWith("/")) unsafe(rawName, `symlink to ${JSON.stringify(rawLink)} (absolute or empty)`);
          const resolved = posix.normalize(posix.join(parentRel, rawLink));
          if (resolved === ".." || resolved.startsWith("../")) unsafe(rawName, `symlink to ${JSON.stringify(rawLink)} leaves the tree`);
          // `..` after another link is resolved physically, not lexically: refuse a target that walks through one.
          const walk: string[] = parentRel === "." ? [] : parentRel.split("/");
          for (const c of rawLink.split("/")) {
            if (c === "" || c === ".") continue;
            if (c === "..") walk.pop();
            else walk.push(c);
            if (seen.get(walk.join("/")) === "link" && rawLink.includes("..")) unsafe(rawName, `symlink to ${JSON.stringify(rawLink)} walks through another link`);
          }
          await mkdir(dirname(target), { recursive: true, mode: 0o755 });
          await symlink(rawLink, target);
          seen.set(rel, "link");
          await readBody(size, 0);
          break;
        }
        case "1": {
          const linkRel = safeEntryPath(rawLink);
          if (seen.get(linkRel) !== "file") unsafe(rawName, `hardlink to ${JSON.stringify(rawLink)}, which is not an earlier file of the archive`);
          await mkdir(dirname(target), { recursive: true, mode: 0o755 });
          await link(join(dest, linkRel), target);
          seen.set(rel, "file");
          await readBody(size, 0);
          break;
        }
        case "3":
        case "4":
          unsafe(rawName, "a device file");
          break;
        case "6":
          unsafe(rawName, "a FIFO");
          break;
        default:
          unsafe(rawName, `entry type ${JSON.stringify(type)}`);
      }
    }
  } finally {
    gunzip.destroy();
  }
  return { files: [...seen.values()].filter((v) => v === "file").length, bytes };
}
