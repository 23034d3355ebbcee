// InventoryCollector.latest against a real nats-server: a stored snapshot is verified once per KV revision (the
// apply engine reads a host's inventory for every lane's guards), yet a host removed from the enrolled hosts is
// refused at once, and a snapshot verified when it came in is not verified again when read back.
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerHandle } from "@lanekeeper/harness";
import { generateSealingKey, generateSigningKey, inventorySubject, InventorySnapshot, signInventory } from "@lanekeeper/shared";
import { StaticHostRegistry } from "./host-registry.js";
import { InventoryCollector } from "./inventory-collector.js";

let nats: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

describe("InventoryCollector.latest", () => {
  it("verifies a stored snapshot once per revision, refuses it once the host is no longer enrolled, and verifies a newer one", async () => {
    const HOST = "build01";
    const identity = generateSigningKey();
    const enrolled = { hostId: HOST, identityKey: identity.publicKey, sealingKey: generateSealingKey().publicKey };
    const hosts = new StaticHostRegistry([enrolled]);
    const collector = await InventoryCollector.open(nc.jetstream(), { hosts, bucket: "lk_inventory_latest" });
    const snap = (seq: number): Uint8Array => signInventory(InventorySnapshot.fromPartial({ hostId: HOST, snapshotSeq: seq, takenAtMs: Date.now() }), identity);
    await collector.ingest(inventorySubject(HOST), snap(1));

    const a = await collector.latest(HOST);
    expect(a?.snapshot.snapshotSeq).toBe(1);
    // The same revision: the snapshot verified before, not a fresh decode.
    expect(await collector.latest(HOST)).toBe(a);

    hosts.replace([]);
    await expect(collector.latest(HOST)).rejects.toMatchObject({ code: expect.any(String) });
    hosts.replace([enrolled]);

    const ingested = await collector.ingest(inventorySubject(HOST), snap(2));
    const b = await collector.latest(HOST);
    // Verified on the way in: the stored revision is not verified again when read back.
    expect(b).toBe(ingested);
    expect(b).not.toBe(a);
    expect(b?.snapshot.snapshotSeq).toBe(2);
    expect(await collector.latest(HOST)).toBe(b);
  });
});
