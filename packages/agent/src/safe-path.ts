/**
 * Path checks for everything the agent mutates under its lane root and unit directory. Names are validated
 * before they get here; these checks catch what validation cannot: a symlink planted on disk (the Nomad
 * "symlinked unit file" class). Every component below the trusted root is `lstat`ed; the root itself is
 * configuration and trusted.
 */
import { lstat } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import { RejectError, RejectReason } from "@lanekeeper/shared";

/** What {@link checkPathUnder} found at the end of the path. */
export type PathState = "missing" | "file" | "directory" | "other";

/**
 * `lstat` every component of `rel` below `root`. Throws `RejectError(SYMLINK)` when any component is a symlink,
 * `RejectError(INVALID_NAME)` when `rel` escapes `root`. Returns what is at the end (`missing` if some component
 * does not exist).
 */
export async function checkPathUnder(root: string, rel: string): Promise<PathState> {
  if (rel === "" || isAbsolute(rel) || rel.split(/[\\/]/).some((c) => c === ".." || c === "." || c === "")) {
    throw new RejectError(RejectReason.INVALID_NAME, `path ${JSON.stringify(rel)} is not a plain relative path`);
  }
  const full = join(root, rel);
  const back = relative(root, full);
  if (back.startsWith("..") || isAbsolute(back)) {
    throw new RejectError(RejectReason.INVALID_NAME, `path ${JSON.stringify(rel)} leaves ${root}`);
  }
  let cur = root;
  const parts = rel.split(sep);
  for (let i = 0; i < parts.length; i++) {
    cur = join(cur, parts[i] ?? "");
    let st;
    try {
      st = await lstat(cur);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return "missing";
      throw err;
    }
    if (st.isSymbolicLink()) {
      throw new RejectError(RejectReason.SYMLINK, `${cur} is a symlink; the agent never follows symlinks under ${root}`, {
        details: { path: cur },
      });
    }
    if (i === parts.length - 1) return st.isFile() ? "file" : st.isDirectory() ? "directory" : "other";
    if (!st.isDirectory()) {
      throw new RejectError(RejectReason.NOT_OWNED, `${cur} is not a directory`, { details: { path: cur } });
    }
  }
  return "missing";
}
