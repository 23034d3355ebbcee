// Operation leases in JetStream KV against a real nats-server: a renewal that was applied although its reply was
// lost (the next one then conflicts) keeps the lease; a key expired or taken over by another writer loses it.
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OperationLeaseLostError } from "../../packages/coordinator/src/apply/operation-leases.js";
import { KvOperationLeases } from "../../packages/coordinator/src/lane-store-kv/kv-operation-leases.js";
import { startNatsServer, type NatsServerHandle } from "../harness/src/nats-server.js";

const BUCKET = "lk_operations_test";
const TTL_MS = 1500;
const info = { laneId: "lane-1", kind: "create" };

let nats: NatsServerHandle;
let nc: NatsConnection;
let leases: KvOperationLeases;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  leases = await KvOperationLeases.open(nc.jetstream(), { bucket: BUCKET, ttlMs: TTL_MS, instance: "a" });
}, 60_000);

afterAll(async () => {
  await leases?.close();
  await nc?.close();
  await nats?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("KV operation leases", () => {
  it("keeps a lease whose renewal was applied without its reply (the key holds its own value under a newer revision)", async () => {
    await leases.hold("op-applied", info);
    const kv = await nc.jetstream().views.kv(BUCKET);
    const mine = await kv.get("op-applied");
    // What a timed-out renewal that the server applied leaves behind: the same value, one revision further.
    await kv.update("op-applied", mine!.value, mine!.revision);
    await sleep(TTL_MS * 1.5);
    expect(() => leases.assertHeld("op-applied")).not.toThrow();
    expect((await kv.get("op-applied"))?.operation).toBe("PUT");
    await leases.release("op-applied");
  });

  it("loses a lease whose key another writer took over", async () => {
    await leases.hold("op-taken", info);
    const kv = await nc.jetstream().views.kv(BUCKET);
    await kv.put("op-taken", new TextEncoder().encode('{"instance":"b"}'));
    await sleep(TTL_MS * 0.8);
    expect(() => leases.assertHeld("op-taken")).toThrow(OperationLeaseLostError);
  });
});
