// Host isolation at the protocol level, on the real nats-server with renderNatsConfig's per-host permissions:
// agent A cannot read B's intents, cannot answer them, cannot publish B's inventory or results, and an intent
// for B that reaches A anyway (misrouted by a coordinator) is refused by A's intake. (The raw permission matrix
// is tested in nats-permissions.test.ts; here the real Intake, Dispatcher and InventoryCollector are used.)
import { intentSubject, InventorySnapshot, inventorySubject, RejectReason, ResultStatus, ResultPayload, signInventory, signResult } from "@lanekeeper/shared";
import type { NatsError } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingExecutor } from "@lanekeeper/testing";
import { buildSignedIntent } from "../../packages/coordinator/src/dispatch/intent-builder.js";
import { ResultVerifier } from "../../packages/coordinator/src/dispatch/result-verifier.js";
import { waitUntil } from "../harness/src/process-util.js";
import { laneSpec, startIntentsWorld, type IntentsWorld } from "./intents-fixture.js";

const A = "build01";
const B = "build02";
let world: IntentsWorld;

beforeAll(async () => {
  world = await startIntentsWorld({ hostIds: [A, B], requestTimeoutMs: 5_000 });
});
afterAll(async () => {
  await world?.close();
});

const rec = (host: string): RecordingExecutor => world.agent(host).executor as RecordingExecutor;

/** Permission errors the server reported on a connection (async, via status()). */
function violations(nc: IntentsWorld["coord"]): { operation: string; subject: string }[] {
  const seen: { operation: string; subject: string }[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      const ctx = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
      if (ctx) seen.push(ctx);
    }
  })();
  return seen;
}

describe("host isolation", () => {
  it("an intent for B is answered by B only; A cannot subscribe to B's intent subject", async () => {
    const a = world.agent(A);
    const seen = violations(a.nc);
    const snooped: Uint8Array[] = [];
    const errors: NatsError[] = [];
    a.nc.subscribe(intentSubject(B), {
      callback: (e, m) => {
        if (e) errors.push(e);
        else snooped.push(m.data);
      },
    });
    await waitUntil(() => seen.find((v) => v.subject === intentSubject(B)), { timeoutMs: 10_000, what: "subscription violation" });
    const out = await world.dispatcher.dispatch({ hostId: B, action: { kind: "create", spec: laneSpec("lane-b", B), registration: Buffer.from("tok") } });
    expect(out.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_OK, hostId: B });
    await a.nc.flush();
    expect(snooped).toEqual([]);
    expect(errors[0]?.code).toBe("PERMISSIONS_VIOLATION");
    expect(rec(A).calls).toEqual([]);
    expect(rec(B).executeCalls).toHaveLength(1);
  });

  it("A cannot publish an inventory on B's subject; the coordinator's view of B is unchanged", async () => {
    const b = world.agent(B);
    await b.inventory.publishNow();
    const before = await waitUntil(async () => (await world.collector.latest(B)) ?? undefined, { timeoutMs: 10_000, what: "B's inventory" });
    const a = world.agent(A);
    const seen = violations(a.nc);
    const forged = signInventory(InventorySnapshot.fromPartial({ hostId: B, snapshotSeq: Date.now() * 4, takenAtMs: Date.now() }), a.identityKey);
    a.nc.publish(inventorySubject(B), forged);
    await waitUntil(() => seen.find((v) => v.subject === inventorySubject(B)), { timeoutMs: 10_000, what: "publish violation" });
    // A's own subject carrying a snapshot that claims B: delivered, but refused by the collector.
    a.nc.publish(inventorySubject(A), forged);
    await a.nc.flush();
    await a.inventory.publishNow();
    await waitUntil(async () => ((await world.collector.latest(A)) !== undefined ? true : undefined), { timeoutMs: 10_000, what: "A's inventory" });
    // B's own publisher may have moved it on; what is stored is B's (re-verified with B's key), never the forgery.
    const after = await world.collector.latest(B);
    expect(after?.snapshot.hostId).toBe(B);
    expect(after!.snapshot.snapshotSeq).toBeGreaterThanOrEqual(before.snapshot.snapshotSeq);
    expect(after!.snapshot.snapshotSeq).toBeLessThan(Date.now() * 2);
    expect(Buffer.from(after!.envelope).equals(Buffer.from(forged))).toBe(false);
  });

  it("A cannot publish a result into the coordinator's reply inbox, and a B-claiming result signed by A is refused", async () => {
    const a = world.agent(A);
    const seen = violations(a.nc);
    a.nc.publish("_INBOX.anything", new Uint8Array([1]));
    await waitUntil(() => seen.find((v) => v.subject === "_INBOX.anything"), { timeoutMs: 10_000, what: "inbox publish violation" });
    // Even if such a result got through, the verifier would refuse it (key enrolled for A, claims B).
    const verifier = new ResultVerifier(world.hosts);
    const forged = signResult(
      ResultPayload.fromPartial({
        intentId: "ab".repeat(16),
        intentDigest: Buffer.alloc(32, 1),
        hostId: B,
        sequence: 1,
        status: ResultStatus.RESULT_STATUS_OK,
      }),
      a.identityKey,
    );
    expect(() => verifier.accept(forged)).toThrow(expect.objectContaining({ reason: RejectReason.ISSUER_MISMATCH }) as Error);
  });

  it("an intent for B misrouted onto A's subject is refused by A (AUDIENCE_MISMATCH), nothing runs", async () => {
    const hostB = world.hosts.host(B)!;
    const forB = buildSignedIntent({
      hostId: B,
      hostSealingKey: hostB.sealingKey,
      sequence: await world.sequences.next(B),
      action: { kind: "stop", laneId: "lane-b" },
      signingKey: world.coordinatorKey,
      nowMs: Date.now(),
    });
    const reply = await world.coord.request(intentSubject(A), forB.envelope, { timeout: 5_000 });
    const verifier = new ResultVerifier(world.hosts);
    verifier.expect({ intentId: forB.intent.intentId, hostId: A, sequence: forB.intent.sequence, digest: forB.digest, expiresAtMs: forB.intent.expiresAtMs });
    const { result } = verifier.accept(reply.data, forB.intent.intentId);
    expect(result).toMatchObject({ hostId: A, status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.AUDIENCE_MISMATCH });
    expect(rec(A).calls).toEqual([]);
    // B never saw it either, so its sequence is still usable by the genuine intent.
    const genuine = await world.dispatcher.dispatch({ hostId: B, action: { kind: "stop", laneId: "lane-b" } });
    expect(genuine.result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });
});
