// A reproducible .tar.gz writer for the release artifacts (scripts/dist.mjs).
//
// Written here rather than shelling out to tar so that the bytes depend only on the inputs: entries sorted by
// path, one fixed mtime, owner and group 0 with empty names, modes 0755/0644 and nothing taken from the build
// host (no user names, no atime/ctime pax records, no GNU-vs-bsdtar differences). zlib's gzip header carries
// no name and a zero mtime, which is what `gzip -n` gives.
import { gzipSync } from "node:zlib";

const BLOCK = 512;

/**
 * One entry of an archive.
 * @typedef {{ path: string, data?: Buffer, dir?: boolean, executable?: boolean }} TarEntry
 */

/** Writes `value` as a NUL-terminated octal field of `width` bytes at `offset`. */
function octal(header, offset, width, value) {
  const text = value.toString(8).padStart(width - 1, "0");
  if (text.length > width - 1) throw new Error(`tar: ${value} does not fit in ${width} bytes`);
  header.write(`${text}\0`, offset, width, "ascii");
}

/** A ustar header for one entry; paths over 100 bytes use ustar's 155-byte prefix field. */
function header(entry, mtime) {
  const h = Buffer.alloc(BLOCK);
  let name = entry.dir ? `${entry.path.replace(/\/$/, "")}/` : entry.path;
  let prefix = "";
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf("/", name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) {
      throw new Error(`tar: path too long for ustar: ${entry.path}`);
    }
  }
  h.write(name, 0, 100, "utf8");
  octal(h, 100, 8, entry.dir || entry.executable ? 0o755 : 0o644);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, entry.dir ? 0 : entry.data.length);
  octal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  h.write(entry.dir ? "5" : "0", 156, 1, "ascii");
  h.write("ustar\0", 257, 6, "ascii");
  h.write("00", 263, 2, "ascii");
  // uname/gname stay empty and devmajor/devminor zero: nothing of the build host leaks in.
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return h;
}

/**
 * The bytes of a gzip-compressed ustar archive of `entries`, sorted by path, every entry stamped `mtime`
 * (seconds since the epoch). Parent directories must be listed as entries of their own.
 * @param {TarEntry[]} entries
 * @param {number} mtime
 * @returns {Buffer}
 */
export function tarGz(entries, mtime) {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts = [];
  for (const entry of sorted) {
    parts.push(header(entry, mtime));
    if (!entry.dir) {
      parts.push(entry.data);
      const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2)); // end-of-archive marker
  return gzipSync(Buffer.concat(parts), { level: 9 });
}
