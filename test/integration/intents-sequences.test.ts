// The durable per-host intent sequence in JetStream KV (lk_sequences) against a real nats-server: two
// allocators (two coordinator processes' worth) racing on the same host never hand out the same sequence
// (compare-and-set on the key's revision, retried on conflict), leases survive a restart of the server, and
// fast-forward only ever moves up.
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvSequenceAllocator } from "../../packages/coordinator/src/dispatch/sequence-allocator.js";
import { startNatsServer, type NatsServerHandle } from "../harness/src/nats-server.js";

let nats: NatsServerHandle;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await nats?.stop();
});

async function allocator(block: number): Promise<KvSequenceAllocator> {
  const nc = await connect({ servers: nats.url });
  conns.push(nc);
  return KvSequenceAllocator.open(nc.jetstream(), { block });
}

describe("KvSequenceAllocator", () => {
  it("two allocators racing on one host never hand out the same sequence", async () => {
    const [a, b] = await Promise.all([allocator(1), allocator(3)]);
    const got = await Promise.all([
      ...Array.from({ length: 60 }, () => a.next("build01")),
      ...Array.from({ length: 60 }, () => b.next("build01")),
    ]);
    expect(new Set(got).size).toBe(got.length);
    expect(Math.min(...got)).toBe(1);
    // Each allocator's own sequences strictly increase (the order intents are published in).
    expect(await a.current("build01")).toBeGreaterThanOrEqual(Math.max(...got));
  });

  it("hosts are independent, and a lease survives a nats-server restart", async () => {
    const a = await allocator(1);
    const first = await a.next("build02");
    expect(first).toBe(1);
    await nats.restart();
    const c = await allocator(1);
    expect(await c.next("build02")).toBe(2);
  });

  it("nextMany: a batch is ascending, above everything before, and costs one compare-and-set", async () => {
    const a = await allocator(4);
    expect(await a.next("build04")).toBe(1); // leases 1..4
    const kv = await conns.at(-1)!.jetstream().views.kv("lk_sequences", { bindOnly: true });
    const rev = (await kv.get("build04"))!.revision;
    // 3 from the lease, 97 from one new lease of 97.
    const batch = await a.nextMany("build04", 100);
    expect(batch).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
    expect((await kv.get("build04"))!.revision).toBe(rev + 1);
    expect(await a.current("build04")).toBe(101);
    // A second allocator racing with batches never overlaps.
    const b = await allocator(1);
    const got = (await Promise.all([a.nextMany("build04", 10), b.nextMany("build04", 10), a.nextMany("build04", 5), b.next("build04")])).flat();
    expect(new Set([...batch, ...got]).size).toBe(batch.length + got.length);
  });

  it("advanceTo only moves up", async () => {
    const a = await allocator(1);
    await a.advanceTo("build03", 500);
    expect(await a.next("build03")).toBe(501);
    await a.advanceTo("build03", 10);
    expect(await a.next("build03")).toBe(502);
  });
});
