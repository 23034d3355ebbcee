// Coordinator key rotation over the real nats-server: signed key-set updates pushed on each agent's intent
// subject (header Lk-Kind: keyset), applied by the agents, visible in their signed inventories, and the old key
// refused once revoked. Every update is signed by the offline root key pinned in the agents' trust files; one
// signed by an online intent key, a rollback and a skipped version are refused over the wire too.
import { createHash } from "node:crypto";
import { generateSigningKey, intentSubject, RejectReason, ResultStatus, signKeySet, signResult, TrustedKeySet, type SignedKeySet } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dispatcher } from "../../packages/coordinator/src/dispatch/dispatcher.js";
import { activateKey, announceKey, KeySetPushError, KeySetPushFailure, pushKeySetUpdate, revokeKey } from "../../packages/coordinator/src/dispatch/key-rotation.js";
import { isResultRejectReason, ResultRejectReason } from "../../packages/coordinator/src/dispatch/result-verifier.js";
import { waitUntil } from "../harness/src/process-util.js";
import { laneSpec, startIntentsWorld, type IntentsWorld } from "./intents-fixture.js";

const HOSTS = ["build01", "build02"];
let world: IntentsWorld;

beforeAll(async () => {
  world = await startIntentsWorld({ hostIds: HOSTS });
});
afterAll(async () => {
  await world?.close();
});

async function pushAll(signed: SignedKeySet): Promise<number[]> {
  return Promise.all(HOSTS.map((h) => pushKeySetUpdate(world.coord, world.hosts, h, signed, { timeoutMs: 5_000 })));
}

describe("key rotation over NATS", () => {
  it("announce → activate → sign with the new key → revoke the old one", async () => {
    const oldKey = world.coordinatorKey;
    const newKey = generateSigningKey();
    let set: TrustedKeySet = world.keySet;
    const now = () => ({ nowMs: Date.now() });

    set = announceKey(set, newKey, now());
    expect(await pushAll(signKeySet(set, [world.rootKey]))).toEqual([2, 2]);
    // The agents report the version they trust in their signed inventories.
    for (const h of HOSTS) await world.agent(h).inventory.publishNow();
    await waitUntil(async () => {
      const v = await Promise.all(HOSTS.map(async (h) => (await world.collector.latest(h))?.snapshot.keysetVersion));
      return v.every((x) => x === 2) ? true : undefined;
    }, { timeoutMs: 10_000, what: "inventories at key-set version 2" });

    set = activateKey(set, newKey.keyId, now());
    expect(await pushAll(signKeySet(set, [world.rootKey]))).toEqual([3, 3]);
    const rotated = new Dispatcher({ nc: world.coord, signingKey: newKey, sequences: world.sequences, hosts: world.hosts });
    const out = await rotated.dispatch({ hostId: "build01", action: { kind: "create", spec: laneSpec("lane-k", "build01"), registration: Buffer.from("t") } });
    expect(out.result.status).toBe(ResultStatus.RESULT_STATUS_OK);

    set = revokeKey(set, oldKey.keyId, now());
    expect(await pushAll(signKeySet(set, [world.rootKey]))).toEqual([4, 4]);
    const stale = await world.dispatcher.dispatch({ hostId: "build01", action: { kind: "stop", laneId: "lane-k" } });
    expect(stale.result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.KEY_REVOKED });
    expect((await rotated.dispatch({ hostId: "build01", action: { kind: "stop", laneId: "lane-k" } })).result.status).toBe(ResultStatus.RESULT_STATUS_OK);

    // Survives an agent restart (the applied set lives in the state dir).
    await world.agent("build02").restart();
    expect(world.agent("build02").trust.version).toBe(4);

    // A replay of an older update, a skipped version, and updates signed by online keys (revoked or active) are all refused.
    await expect(pushKeySetUpdate(world.coord, world.hosts, "build01", signKeySet(set, [world.rootKey]))).rejects.toMatchObject({
      reasonCode: RejectReason.KEYSET_VERSION,
    });
    const skipped = { ...revokeKey(set, oldKey.keyId, now()), version: 6 };
    await expect(pushKeySetUpdate(world.coord, world.hosts, "build01", signKeySet(skipped, [world.rootKey]))).rejects.toMatchObject({
      reasonCode: RejectReason.KEYSET_VERSION,
    });
    const third = generateSigningKey();
    const byRevoked = signKeySet(announceKey(set, third, now()), [oldKey, third]);
    const err = await pushKeySetUpdate(world.coord, world.hosts, "build01", byRevoked).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeySetPushError);
    expect((err as KeySetPushError).reasonCode).toBe(RejectReason.KEYSET_NOT_ROOT_SIGNED);
    const byActive = signKeySet({ ...announceKey(set, third, now()), hwmFloor: Number.MAX_SAFE_INTEGER }, [newKey]);
    await expect(pushKeySetUpdate(world.coord, world.hosts, "build01", byActive)).rejects.toMatchObject({ reasonCode: RejectReason.KEYSET_NOT_ROOT_SIGNED });
    expect(world.agent("build01").trust.version).toBe(4);
  });
});

describe("key-set push failures carry typed codes", () => {
  it("an unenrolled host is UNKNOWN_HOST, nothing sent", async () => {
    const err = await pushKeySetUpdate(world.coord, world.hosts, "build99", signKeySet(world.keySet, [world.rootKey])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeySetPushError);
    expect((err as KeySetPushError).reasonCode).toBe(KeySetPushFailure.UNKNOWN_HOST);
  });

  it("an answer signed by the host's own key but about another update is the result-level RESULT_DIGEST_MISMATCH", async () => {
    const agent = world.agent("build02");
    await agent.stop();
    // Stand in for the agent on its own login: a validly signed answer that echoes another payload's digest.
    const sub = agent.nc.subscribe(intentSubject(agent.hostId), {
      callback: (_err, msg) => {
        msg.respond(
          signResult(
            {
              intentId: "0".repeat(32),
              intentDigest: createHash("sha256").update("another update").digest(),
              hostId: agent.hostId,
              sequence: 9,
              status: ResultStatus.RESULT_STATUS_OK,
              reasonCode: "",
              message: "",
              startedAtMs: Date.now(),
              finishedAtMs: Date.now(),
              observed: undefined,
            },
            agent.identityKey,
          ),
        );
      },
    });
    try {
      await agent.nc.flush();
      const err = await pushKeySetUpdate(world.coord, world.hosts, agent.hostId, signKeySet(world.keySet, [world.rootKey]), { timeoutMs: 5_000 }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(KeySetPushError);
      const code = (err as KeySetPushError).reasonCode;
      expect(code).toBe(ResultRejectReason.DIGEST_MISMATCH);
      expect(isResultRejectReason(code)).toBe(true);
    } finally {
      sub.unsubscribe();
      await agent.restart();
    }
  });
});
