import { randomBytes } from "node:crypto";
import { open, readFile, rename, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { MAX_CONFIG_BYTES, parsePolicy, type Policy } from "@lanekeeper/shared";
import { CliError } from "./cli-errors.js";

/** A policy file as read: its path, its text (for comment-preserving edits) and the parsed policy. */
export interface PolicyFile {
  readonly path: string;
  readonly text: string;
  readonly policy: Policy;
}

/** The policy path: `--policy`, else `$LANEKEEPER_POLICY`, else `lanekeeper.yaml` in the working directory. */
export function policyPath(option: string | undefined, env: Readonly<Record<string, string | undefined>>, cwd: string): string {
  return resolve(cwd, option ?? env.LANEKEEPER_POLICY ?? "lanekeeper.yaml");
}

/** Read a text file of bounded size, with a CLI error that says which file and why. */
export async function readSmallText(path: string, what: string, code: "POLICY_UNREADABLE" | "ENROLLMENT_INVALID" | "RECORDS_INVALID"): Promise<string> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new CliError(code, `cannot read ${what} ${path}: ${why}${why === "ENOENT" && code === "POLICY_UNREADABLE" ? " (pass --policy <file> or set LANEKEEPER_POLICY)" : ""}`);
  }
  if (buf.length > MAX_CONFIG_BYTES) throw new CliError(code, `${what} ${path} is larger than ${MAX_CONFIG_BYTES} bytes`);
  return buf.toString("utf8");
}

/** Read and parse the policy; a `ConfigError` lists every `path: message`. */
export async function readPolicyFile(path: string): Promise<PolicyFile> {
  const text = await readSmallText(path, "policy", "POLICY_UNREADABLE");
  return { path, text, policy: parsePolicy(text, path) };
}

/**
 * Replace a file's content atomically: write a temp file beside it with the same mode, fsync, rename. A crash
 * leaves either the old or the new policy, never a torn one.
 */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString("hex")}.lanekeeper.tmp`);
  let mode = 0o600;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch {
    // A new file keeps the private default.
  }
  try {
    const fh = await open(tmp, "wx", mode);
    try {
      await fh.writeFile(text, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new CliError("POLICY_WRITE_FAILED", `cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? "failed"}`);
  }
}
