// CoordinatorAudit against a real nats-server: records go to the local chain and, in chain order, to the LK_AUDIT
// stream; records written while the stream was unreachable are republished on the next open; a stream holding a
// different chain under the same name is never interleaved with this one.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { coordinatorAuditSubject, verifyAuditChain } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerHandle } from "@lanekeeper/harness";
import { readAuditStream, verifyStreamChains } from "./audit-stream.js";
import { CoordinatorAudit } from "./coordinator-audit.js";

let nats: NatsServerHandle;
let nc: NatsConnection;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  dir = await mkdtemp(join(tmpdir(), "lk-audit-"));
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("CoordinatorAudit", () => {
  it("appends to the chain and copies each record to the stream in chain order", async () => {
    const jsm = await nc.jetstreamManager();
    const a = await CoordinatorAudit.open({ path: join(dir, "a.jsonl"), js: nc.jetstream(), jsm, instance: "one" });
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.append({ action: "create", phase: "planned", laneId: `l${i}` })));
    await a.close();
    const local = verifyAuditChain(await readFile(join(dir, "a.jsonl"), "utf8"));
    expect(local).toMatchObject({ ok: true, count: 20 });
    const stream = await readAuditStream(jsm, { subject: coordinatorAuditSubject("one") });
    expect(stream.map((r) => r.record.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect((await verifyStreamChains(jsm)).ok).toBe(true);
  });

  it("records written without the stream are republished when it is back", async () => {
    const path = join(dir, "b.jsonl");
    const offline = await CoordinatorAudit.open({ path, instance: "two" });
    for (let i = 0; i < 5; i++) await offline.append({ action: "drain", phase: "started", laneId: `l${i}` });
    await offline.close();
    const jsm = await nc.jetstreamManager();
    expect(await readAuditStream(jsm, { subject: coordinatorAuditSubject("two") })).toEqual([]);
    const online = await CoordinatorAudit.open({ path, js: nc.jetstream(), jsm, instance: "two" });
    await online.append({ action: "drain", phase: "succeeded", laneId: "l9" });
    await online.close();
    expect((await readAuditStream(jsm, { subject: coordinatorAuditSubject("two") })).map((r) => r.record.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("never interleaves another chain published under the same name", async () => {
    const jsm = await nc.jetstreamManager();
    const other = await CoordinatorAudit.open({ path: join(dir, "c.jsonl"), instance: "one" });
    await other.append({ action: "remove", phase: "planned" });
    await other.close();
    const reopened = await CoordinatorAudit.open({ path: join(dir, "c.jsonl"), js: nc.jetstream(), jsm, instance: "one" });
    await reopened.append({ action: "remove", phase: "started" });
    await reopened.close();
    // Stream subject "one" still holds only the first chain's 20 records.
    expect((await readAuditStream(jsm, { subject: coordinatorAuditSubject("one") })).length).toBe(20);
  });

  it("several writers on one chain file (serve and operators' commands) keep one valid chain, in order in the stream", async () => {
    const jsm = await nc.jetstreamManager();
    const path = join(dir, "shared.jsonl");
    const writers = await Promise.all([0, 1, 2].map(() => CoordinatorAudit.open({ path, js: nc.jetstream(), jsm, instance: "shared" })));
    await Promise.all(writers.flatMap((w, i) => Array.from({ length: 15 }, (_, j) => w.append({ action: "apply", phase: "dry-run", message: `${i}/${j}` }))));
    await Promise.all(writers.map((w) => w.close()));
    expect(verifyAuditChain(await readFile(path, "utf8"))).toMatchObject({ ok: true, count: 45 });
    const stream = await readAuditStream(jsm, { subject: coordinatorAuditSubject("shared") });
    expect(stream.map((r) => r.record.seq)).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
    expect((await verifyStreamChains(jsm)).subjects.find((x) => x.subject === coordinatorAuditSubject("shared"))?.result.ok).toBe(true);
  });
});
