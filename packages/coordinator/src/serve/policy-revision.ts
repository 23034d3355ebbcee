/**
 * Which policy the leading `serve` runs: its revision (the digest of the parsed policy and when it was loaded) is
 * written into the leader lock record at every renewal, so `plan` and `status` on any machine can say what the
 * leader acts on and warn when their own policy file differs from it.
 */
import type { Policy } from "@lanekeeper/shared";
import type { JetStreamClient } from "nats";
import { policyDigest } from "../plan/saved-plan.js";
import { LEADER_BUCKET, LEADER_KEY } from "./limits.js";

/** A policy revision as the leader publishes it (the `policy` member of its leader lock record). */
export interface PublishedPolicy {
  /** SHA-256 over the canonical JSON of the parsed policy (`sha256:<hex>`; comments and layout do not count). */
  readonly digest: string;
  /** When this process loaded (or reloaded) it. */
  readonly loadedAtMs: number;
  /** The last reload that did not take (the revision above kept running), until one takes. */
  readonly reloadFailed?: { readonly atMs: number; readonly message: string };
}

/** What `plan` and `status` show about the policy revisions (also their `--json` member `policy`). */
export interface PolicyRevisionView {
  /** The digest of the policy file this command read. */
  readonly local: string;
  /** The leading coordinator and what it runs; null when no coordinator leads. */
  readonly leader: {
    readonly instance: string;
    /** Absent when the leader does not publish its revision (an older lanekeeper). */
    readonly digest?: string;
    readonly loadedAt?: string;
    readonly reloadFailed?: { readonly at: string; readonly message: string };
  } | null;
  /** The leader runs another policy than the local file. */
  readonly differs: boolean;
  /** The leader lock record could not be read (NATS trouble): who leads is unknown. */
  readonly unreadable?: string;
}

/** The revision of `policy` loaded at `nowMs`. */
export function policyRevision(policy: Policy, nowMs: number): PublishedPolicy {
  return { digest: policyDigest(policy), loadedAtMs: nowMs };
}

/** A digest short enough for a line of text (the `--json` output has it whole). */
export function shortDigest(digest: string): string {
  return digest.slice(0, "sha256:".length + 12);
}

function isPublishedPolicy(v: unknown): v is PublishedPolicy {
  const p = v as Partial<PublishedPolicy> | null;
  return typeof p === "object" && p !== null && typeof p.digest === "string" && typeof p.loadedAtMs === "number";
}

/**
 * Compare the local policy with the leader lock record (`undefined`: no leader). Pure. The record is another
 * process's JSON, so only well-formed members are taken from it.
 */
export function policyRevisionView(local: Policy, record: unknown): PolicyRevisionView {
  const mine = policyDigest(local);
  const r = record as { instance?: unknown; policy?: unknown; unreadable?: unknown } | undefined | null;
  if (typeof r !== "object" || r === null) return { local: mine, leader: null, differs: false };
  if (typeof r.unreadable === "string") return { local: mine, leader: null, differs: false, unreadable: r.unreadable };
  const instance = typeof r.instance === "string" ? r.instance : "?";
  if (!isPublishedPolicy(r.policy)) return { local: mine, leader: { instance }, differs: false };
  const p = r.policy;
  const failed = p.reloadFailed;
  return {
    local: mine,
    leader: {
      instance,
      digest: p.digest,
      loadedAt: new Date(p.loadedAtMs).toISOString(),
      ...(typeof failed?.message === "string" && typeof failed.atMs === "number"
        ? { reloadFailed: { at: new Date(failed.atMs).toISOString(), message: failed.message } }
        : {}),
    },
    differs: p.digest !== mine,
  };
}

/** The view as text lines (no trailing newlines): what the leader runs, the warning, a failed reload. */
export function policyRevisionLines(v: PolicyRevisionView): string[] {
  const l = v.leader;
  if (v.unreadable !== undefined) return [`Policy: this file is ${shortDigest(v.local)}; which policy the leader runs could not be read (${v.unreadable})`];
  if (l === null) return [`Policy: this file is ${shortDigest(v.local)}; no coordinator leads (no lanekeeper serve holds the leader lock)`];
  if (l.digest === undefined) return [`Policy: this file is ${shortDigest(v.local)}; the leader ${l.instance} does not publish its policy revision`];
  const lines = [
    `Policy: the leader ${l.instance} runs ${shortDigest(l.digest)} (loaded ${l.loadedAt ?? "?"}); this file is ${v.differs ? shortDigest(v.local) : "the same"}`,
  ];
  if (v.differs) {
    lines.push(
      `WARNING: this policy file differs from the one the leader runs: the leader acts on ${shortDigest(l.digest)}, not on this file ` +
        "(it reloads its own file on change or SIGHUP; see docs/cluster.md, \"Policy reload\")",
    );
  }
  if (l.reloadFailed !== undefined) lines.push(`policy reload failed: ${l.reloadFailed.message} (at ${l.reloadFailed.at}; the leader keeps running ${shortDigest(l.digest)})`);
  return lines;
}

/**
 * The leader lock record as stored (parsed JSON), undefined when no coordinator leads or the bucket does not
 * exist yet, or `{ unreadable: message }` when NATS did not answer (a read-only command goes on without it).
 * Binds to the bucket without creating it: a read-only command leaves JetStream as it found it.
 */
export async function readLeaderRecord(js: JetStreamClient | undefined, bucket = LEADER_BUCKET): Promise<unknown> {
  if (js === undefined) return { unreadable: "no NATS connection" };
  let kv;
  try {
    kv = await js.views.kv(bucket, { bindOnly: true });
  } catch (err) {
    const m = err instanceof Error ? err.message : String(err);
    return /not found/i.test(m) ? undefined : { unreadable: m };
  }
  let e;
  try {
    e = await kv.get(LEADER_KEY);
  } catch (err) {
    return { unreadable: err instanceof Error ? err.message : String(err) };
  }
  if (e === null || e.operation !== "PUT") return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(e.value)) as unknown;
  } catch {
    return undefined;
  }
}
