/**
 * Per-host audit anchors, kept by the coordinator in the JetStream KV bucket `lk_audit_anchors`: the highest
 * audit-chain head each agent has reported in a signed inventory, stored as that signed inventory envelope
 * itself (so the anchor is the agent's own signed word, re-verified on every read, not the coordinator's). A
 * reported head that goes back, restarts from genesis or replaces the anchored record never lowers the anchor:
 * the first such snapshot is kept beside it as evidence (`conflict`). Evidence deleted or cut short on the host
 * therefore shows up in `lanekeeper audit verify --host <id>`.
 */
import { compareAuditHeads, type AuditAnchor, type HeadComparison, type InventorySnapshot } from "@lanekeeper/shared";
import type { JetStreamClient, KV } from "nats";
import { isKvConflict } from "../lane-store-kv/kv-conflict.js";

/** The KV bucket of audit anchors. */
export const AUDIT_ANCHOR_BUCKET = "lk_audit_anchors";

interface StoredAnchor {
  /** base64 of the signed inventory envelope that reported the anchored head. */
  anchor: string;
  /** base64 of the first signed inventory that contradicted it. */
  conflict?: string;
}

/** A host's anchor as read back (envelopes verified by the caller's `verify`). */
export interface HostAuditAnchor {
  readonly hostId: string;
  readonly anchor: AuditAnchor;
  /** `taken_at_ms` of the snapshot that reported it. */
  readonly anchoredAtMs: number;
  /** The first later report that contradicted the anchor, and how. */
  readonly conflict?: { readonly head: AuditAnchor; readonly takenAtMs: number; readonly comparison: Exclude<HeadComparison, { kind: "same" | "ahead" }> };
}

const headOf = (s: InventorySnapshot): AuditAnchor | undefined =>
  s.auditHead === undefined ? undefined : { seq: s.auditHead.seq, hash: s.auditHead.hash, firstHash: s.auditHead.firstHash };

/** The anchor bucket; `verify` re-verifies a stored envelope (signature, enrolled host key) into its snapshot. */
export class AuditAnchorStore {
  private constructor(
    private readonly kv: KV,
    private readonly verify: (envelope: Uint8Array) => InventorySnapshot,
  ) {}

  /** Open (creating if needed) the bucket. */
  static async open(js: JetStreamClient, verify: (envelope: Uint8Array) => InventorySnapshot, opts: { bucket?: string; replicas?: number } = {}): Promise<AuditAnchorStore> {
    const kv = await js.views.kv(opts.bucket ?? AUDIT_ANCHOR_BUCKET, { history: 1, replicas: opts.replicas ?? 1 });
    return new AuditAnchorStore(kv, verify);
  }

  /**
   * Take a verified snapshot's audit head into account: a first or higher head of the same chain becomes the
   * anchor; a head that contradicts it is kept (the first one only) as evidence. Compare-and-set, retried.
   */
  async observe(snapshot: InventorySnapshot, envelope: Uint8Array): Promise<void> {
    const head = headOf(snapshot);
    if (head === undefined) return;
    const b64 = Buffer.from(envelope).toString("base64");
    for (let attempt = 0; attempt < 20; attempt++) {
      const e = await this.kv.get(snapshot.hostId);
      const exists = e !== null && e.operation === "PUT";
      let next: StoredAnchor | undefined;
      if (!exists) {
        next = { anchor: b64 };
      } else {
        const stored = JSON.parse(new TextDecoder().decode(e.value)) as StoredAnchor;
        const anchor = headOf(this.verify(Buffer.from(stored.anchor, "base64")));
        if (anchor === undefined) return;
        const c = compareAuditHeads(anchor, head);
        if (c.kind === "ahead" && stored.conflict === undefined) next = { anchor: b64 };
        else if (c.kind !== "same" && c.kind !== "ahead" && stored.conflict === undefined) next = { ...stored, conflict: b64 };
      }
      if (next === undefined) return;
      const bytes = new TextEncoder().encode(JSON.stringify(next));
      try {
        if (exists) await this.kv.update(snapshot.hostId, bytes, e.revision);
        else await this.kv.create(snapshot.hostId, bytes);
        return;
      } catch (err) {
        if (!isKvConflict(err)) throw err;
      }
    }
  }

  /** The anchor kept for `hostId`, or undefined when none of its inventories carried an audit head. */
  async get(hostId: string): Promise<HostAuditAnchor | undefined> {
    const e = await this.kv.get(hostId);
    if (e === null || e.operation !== "PUT") return undefined;
    const stored = JSON.parse(new TextDecoder().decode(e.value)) as StoredAnchor;
    const a = this.verify(Buffer.from(stored.anchor, "base64"));
    const anchor = headOf(a);
    if (anchor === undefined || a.hostId !== hostId) return undefined;
    let conflict: HostAuditAnchor["conflict"];
    if (stored.conflict !== undefined) {
      const c = this.verify(Buffer.from(stored.conflict, "base64"));
      const head = headOf(c);
      if (head !== undefined && c.hostId === hostId) {
        const comparison = compareAuditHeads(anchor, head, `the audit chain of ${hostId}`);
        if ("missing" in comparison) conflict = { head, takenAtMs: c.takenAtMs, comparison };
      }
    }
    return { hostId, anchor, anchoredAtMs: a.takenAtMs, ...(conflict === undefined ? {} : { conflict }) };
  }
}
