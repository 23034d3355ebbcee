/**
 * The two tar operations the container runtime needs, in a few lines instead of a dependency: build an
 * archive holding one small file (to put a secret into a created container with the engine's archive API, so it
 * never appears in the container's command or config), and read the first file of an archive (to read `.runner`
 * back).
 */

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, "0")}\0`;
}

/** A ustar archive with one regular file. */
export function tarSingleFile(name: string, data: Buffer, opts: { mode: number; uid?: number; gid?: number; mtimeS?: number }): Buffer {
  if (!/^[A-Za-z0-9._-]{1,99}$/.test(name)) throw new Error(`tar entry name ${JSON.stringify(name)} is not a plain file name`);
  const h = Buffer.alloc(512);
  h.write(name, 0, "ascii");
  h.write(octal(opts.mode & 0o7777, 8), 100, "ascii");
  h.write(octal(opts.uid ?? 0, 8), 108, "ascii");
  h.write(octal(opts.gid ?? 0, 8), 116, "ascii");
  h.write(octal(data.length, 12), 124, "ascii");
  h.write(octal(opts.mtimeS ?? Math.floor(Date.now() / 1000), 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write("0", 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad, Buffer.alloc(1024)]);
}

/** The content of the first regular file in a tar archive, or `undefined`. */
export function firstTarFile(archive: Buffer, maxBytes: number): Buffer | undefined {
  let off = 0;
  while (off + 512 <= archive.length) {
    const h = archive.subarray(off, off + 512);
    if (h.every((b) => b === 0)) return undefined;
    const size = Number.parseInt(h.subarray(124, 136).toString("ascii").replace(/\0.*$/, "").trim() || "0", 8);
    const type = String.fromCharCode(h[156] ?? 0);
    const start = off + 512;
    if ((type === "0" || type === "\0") && Number.isSafeInteger(size)) {
      if (size > maxBytes || start + size > archive.length) return undefined;
      return archive.subarray(start, start + size);
    }
    off = start + Math.ceil(size / 512) * 512;
  }
  return undefined;
}
