// Allocating an intent's sequence while the sequences bucket's stream has no leader (its node just died: JetStream
// answers 503 or not at all for a few seconds): the compare-and-set is retried within a bound instead of failing
// the action (SEQUENCE_ALLOCATION_FAILED), and a write that took effect although its answer was lost never makes a
// sequence go out twice (the retry reads afresh: a gap, which agents accept).
import type { JetStreamClient, KV, KvEntry } from "nats";
import { describe, expect, it } from "vitest";
import { KvSequenceAllocator } from "./sequence-allocator.js";

function natsError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

/**
 * A one-key sequences bucket: `faults` says, per call in order, whether that get/update fails and how ("lost" = the
 * update takes effect but its answer is lost as a TIMEOUT).
 */
function bucket(faults: Record<number, "503" | "TIMEOUT" | "lost">): { js: JetStreamClient; value: () => number } {
  let value = 0;
  let revision = 0;
  let call = 0;
  const kv = {
    get: (): Promise<KvEntry | null> => {
      const f = faults[call++];
      if (f === "503" || f === "TIMEOUT") return Promise.reject(natsError(f));
      return Promise.resolve(revision === 0 ? null : ({ operation: "PUT", revision, value: new TextEncoder().encode(String(value)) } as unknown as KvEntry));
    },
    create: (_k: string, v: Uint8Array): Promise<number> => kv.update(_k, v, 0),
    update: (_k: string, v: Uint8Array, rev: number): Promise<number> => {
      const f = faults[call++];
      if (f === "503" || f === "TIMEOUT") return Promise.reject(natsError(f));
      if (rev !== revision) return Promise.reject(Object.assign(new Error("wrong last sequence"), { api_error: { err_code: 10071 } }));
      value = Number(new TextDecoder().decode(v));
      revision++;
      return f === "lost" ? Promise.reject(natsError("TIMEOUT")) : Promise.resolve(revision);
    },
  };
  const js = { views: { kv: () => Promise.resolve(kv as unknown as KV) } } as unknown as JetStreamClient;
  return { js, value: () => value };
}

const noWait = (): Promise<void> => Promise.resolve();

describe("sequence allocation while JetStream does not answer", () => {
  it("rides out 503s on the read and the write", async () => {
    const b = bucket({ 0: "503", 2: "503" });
    const seq = await KvSequenceAllocator.open(b.js, { block: 10, sleep: noWait });
    expect(await seq.nextMany("build01", 2)).toEqual([1, 2]);
    expect(b.value()).toBe(10);
  });

  it("a write whose answer was lost is not handed out twice: the retry leases the block above it", async () => {
    const b = bucket({ 1: "lost" });
    const seq = await KvSequenceAllocator.open(b.js, { block: 10, sleep: noWait });
    expect(await seq.next("build01")).toBe(11);
    expect(b.value()).toBe(20);
  });

  it("gives up past its bound with SEQUENCE_ALLOCATION_FAILED", async () => {
    const faults: Record<number, "503"> = {};
    for (let i = 0; i < 100; i++) faults[i] = "503";
    const b = bucket(faults);
    const seq = await KvSequenceAllocator.open(b.js, { block: 10, retryMs: 1, sleep: noWait });
    await expect(seq.next("build01")).rejects.toMatchObject({ code: "SEQUENCE_ALLOCATION_FAILED" });
  });
});
