// Several coordinator processes (a `serve` and operators' commands, each under its own instance name) appending to
// one local audit chain at the same time, against a real nats-server: the local file and the LK_AUDIT stream must
// hold one and the same verifiable history. Before the chain had one stream name, each instance published on its
// own subject and the stream deduplicated the records another instance had published: `audit verify --stream`
// then reported "seq 59 where 43 was expected" while the file was intact.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connect, type NatsConnection } from "nats";
import { coordinatorAuditSubject, verifyAuditChain, type AuditRecord } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readAuditStream, verifyStreamChains } from "../../packages/coordinator/src/audit/audit-stream.js";
import { startNatsServer, type NatsServerHandle } from "../harness/src/nats-server.js";

const run = promisify(execFile);
const DRIVER = fileURLToPath(new URL("./coordinator-audit-driver.mjs", import.meta.url));

let nats: NatsServerHandle;
let nc: NatsConnection;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  dir = await mkdtemp(join(tmpdir(), "lk-audit-procs-"));
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("one audit history across coordinator processes", () => {
  it("serve and two operator commands with different instance names: the file and the stream copy are the same chain", async () => {
    const path = join(dir, "audit.jsonl");
    // serve starts first; then two operators' commands run while it writes.
    const serve = run(process.execPath, [DRIVER, nats.url, path, "serve-a", "40"]);
    await new Promise((r) => setTimeout(r, 300));
    const ops = [run(process.execPath, [DRIVER, nats.url, path, "operator-bob", "20"]), run(process.execPath, [DRIVER, nats.url, path, "operator-carol", "20"])];
    await Promise.all([serve, ...ops]);
    const text = await readFile(path, "utf8");
    expect(verifyAuditChain(text)).toMatchObject({ ok: true, count: 160 });
    const local = text.split("\n").filter((l) => l !== "").map((l) => (JSON.parse(l) as AuditRecord).hash);
    const jsm = await nc.jetstreamManager();
    const v = await verifyStreamChains(jsm);
    // The chain's one stream name: that of whichever process opened the file first (serve, normally).
    const name = (await readFile(`${path}.stream`, "utf8").catch(() => "serve-a")).trim();
    expect(["serve-a", "operator-bob", "operator-carol"]).toContain(name);
    expect(v.subjects.map((s) => [s.subject, s.result.ok, s.result.count])).toEqual([[coordinatorAuditSubject(name), true, 160]]);
    expect(v.ok).toBe(true);
    const copy = await readAuditStream(jsm, { subject: coordinatorAuditSubject(name) });
    expect(copy.map((r) => r.record.hash)).toEqual(local);
  });
});
