/** Small helpers of the fleet launcher: CLI output, YAML edits, GitHub emulator REST calls. */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { stateDirFor } from "./state-root.js";
import { parseDocument, type Document } from "yaml";
import type { GitHubEmulator } from "./github-emulator/server.js";
import { LauncherError } from "./launcher-error.js";
import type { CommandResult } from "./process-util.js";
import type { CliResult } from "./fleet-types.js";

/** A fresh random password or token (never printed). */
export const secret = (): string => randomBytes(24).toString("base64url");

/**
 * Awaits every promise (so nothing is left running unobserved when one fails) and rethrows the first failure.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** The default parent of fleet directories. */
export function defaultFleetBaseDir(): string {
  return process.env.LK_FLEET_DIR ?? stateDirFor("fleet");
}

/** Parses CLI stdout as JSON: the whole text, else the last line that parses. */
export function parseCliJson(stdout: string): unknown {
  const text = stdout.trim();
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Progress lines before a final JSON document: take the last line that parses.
  }
  const lines = text.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim() ?? "";
    if (!line.startsWith("{") && !line.startsWith("[")) continue;
    try {
      return JSON.parse(line) as unknown;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** A command's result with its stdout parsed by {@link parseCliJson}. */
export function cliResult(r: CommandResult): CliResult {
  const json = parseCliJson(r.stdout);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, ...(json !== undefined ? { json } : {}) };
}

/** `scope` → the dashed form svc.sh uses in unit names (`acme/api` → `acme-api`, `org:acme` → `acme`). */
export function dashedScope(scope: string): string {
  return scope.replace(/^org:/, "").replace(/[^A-Za-z0-9]+/g, "-");
}

/** Sets `path` in a YAML document to `value` (as a YAML node, so maps and lists keep their shape). */
export function setIn(doc: Document, path: (string | number)[], value: unknown): void {
  doc.setIn(path, doc.createNode(value));
}

/** One REST call to the GitHub emulator with the fleet's token; throws `LauncherError(COMMAND_FAILED)` on a non-2xx. */
export async function githubRest(gh: GitHubEmulator, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${gh.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `token ${gh.token}`,
      accept: "application/vnd.github+json",
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new LauncherError("COMMAND_FAILED", `GitHub emulator ${method} ${path}: ${res.status} ${text}`);
  return text === "" ? undefined : (JSON.parse(text) as unknown);
}

/** The REST path prefix of a scope: `/repos/<owner>/<repo>` or `/orgs/<org>`. */
export function scopePath(scope: string): string {
  return scope.startsWith("org:") ? `/orgs/${scope.slice(4)}` : `/repos/${scope}`;
}

/** A fresh runner registration token for `scope`. */
export async function registrationToken(gh: GitHubEmulator, scope: string): Promise<string> {
  const body = (await githubRest(gh, "POST", `${scopePath(scope)}/actions/runners/registration-token`)) as { token: string };
  return body.token;
}


/** Edits a YAML file in place, keeping its comments and layout. */
export async function editYamlFile(path: string, edit: (doc: Document) => void): Promise<void> {
  const doc = parseDocument(await readFile(path, "utf8"));
  if (doc.errors.length > 0) throw new LauncherError("BAD_OPTIONS", `${path}: ${doc.errors[0]?.message ?? "bad YAML"}`);
  edit(doc);
  await writeFile(path, doc.toString({ lineWidth: 0 }));
}
