/**
 * Durable file writes for the agent's state: temp file in the same directory, fsync, rename, fsync of the
 * directory. After {@link writeFileAtomic} resolves a crash leaves either the old or the new content, never a torn
 * file, and the rename itself survives a power cut.
 */
import { randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { lstat, open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { AgentStateError } from "./errors.js";

/** fsync a directory so a rename or unlink inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Write `data` to `path` atomically and durably with the given mode (the temp file is created with that mode,
 * so a secret is never briefly world-readable). Refuses to replace a symlink.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = dirname(path);
  const existing = await lstat(path).catch(() => undefined);
  if (existing?.isSymbolicLink()) throw new AgentStateError(`refusing to replace symlink ${path}`);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

/** Remove a file durably; a missing file is fine. */
export async function unlinkDurable(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  await fsyncDir(dirname(path));
}

/**
 * Read a small file without following a final symlink and with a size cap. Returns `undefined` when the file
 * does not exist.
 */
export async function readSmallFile(path: string, maxBytes: number): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") throw new AgentStateError(`${path} is a symlink`);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new AgentStateError(`${path} is not a regular file`);
    if (st.size > maxBytes) throw new AgentStateError(`${path} is ${st.size} bytes, more than the ${maxBytes} accepted`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Read a file's text, or `undefined` when missing (no size or symlink checks: for trusted agent paths). */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
