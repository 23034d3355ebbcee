// security-cases group 15: evidence deletion. A deleted audit file, records cut off its end, and a chain restarted
// from genesis must each be reported against an anchor kept outside the file, and never verify as "intact".
// Real nats-server with JetStream holds the outside anchors: the coordinator's own chain head is its copy in the
// LK_AUDIT stream; an agent's head travels in its signed inventory and the coordinator keeps the highest one per
// host in the lk_audit_anchors KV bucket. The agent also keeps its head in <stateDir>/audit.anchor.json.
import { mkdir, mkdtemp, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import {
  AuditError,
  AuditLog,
  generateSealingKey,
  generateSigningKey,
  inventorySubject,
  openAnchoredAuditLog,
  type SigningKey,
} from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditAnchorPath, auditLogPath } from "../../packages/agent/src/audit-evidence.js";
import { main as agentMain } from "../../packages/agent/src/cli.js";
import { EXIT } from "../../packages/agent/src/exit-codes.js";
import { InventoryPublisher } from "../../packages/agent/src/intake/inventory-publisher.js";
import type { CoordinatorContext } from "../../packages/coordinator/src/context/coordinator-context.js";
import { CoordinatorAudit } from "../../packages/coordinator/src/audit/coordinator-audit.js";
import { runAuditVerify } from "../../packages/coordinator/src/cli/audit-command.js";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { ExitCode } from "../../packages/coordinator/src/cli/exit-codes.js";
import { StaticHostRegistry } from "../../packages/coordinator/src/dispatch/host-registry.js";
import { InventoryCollector } from "../../packages/coordinator/src/dispatch/inventory-collector.js";
import { startNatsServer, type NatsServerHandle } from "../harness/src/nats-server.js";

const HOST = "build01";
let nats: NatsServerHandle;
let nc: NatsConnection;
let dir: string;
let policy: string;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  dir = await mkdtemp(join(tmpdir(), "lk-evidence-"));
  policy = join(dir, "lanekeeper.yaml");
  await writeFile(policy, `github:\n  auth: { tokenEnv: GITHUB_TOKEN }\ncoordinator:\n  keyFile: ${join(dir, "key.pem")}\n  natsUrl: ${nats.url}\n`);
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A coordinator CLI run against the real JetStream, with `ctx` holding what the audit commands use. */
async function coordinatorVerify(args: Parameters<typeof runAuditVerify>[0], ctx: Partial<CoordinatorContext>): Promise<{ code: ExitCode; out: string }> {
  let out = "";
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (out += t), env: {}, cwd: dir, now: () => Date.now() };
  const code = await runAuditVerify({ policy, ...args }, io, { open: () => Promise.resolve({ ...ctx, close: () => Promise.resolve() } as CoordinatorContext) });
  return { code, out };
}

const lines = async (p: string): Promise<string[]> => (await readFile(p, "utf8")).split("\n").filter((l) => l !== "");

describe("the coordinator's own chain, anchored in the LK_AUDIT stream", () => {
  let path: string;
  let ctx: Partial<CoordinatorContext>;

  beforeAll(async () => {
    path = join(dir, "coordinator-audit.jsonl");
    const audit = await CoordinatorAudit.open({ path, js: nc.jetstream(), jsm: await nc.jetstreamManager(), instance: "coord1" });
    for (let i = 0; i < 5; i++) await audit.append({ action: "create", phase: "planned", laneId: `l${i}` });
    ctx = { jsm: await nc.jetstreamManager(), audit };
    await audit.close();
  });

  it("an untouched chain verifies against the stream", async () => {
    const r = await coordinatorVerify({ file: path, stream: true }, ctx);
    expect(r.code, r.out).toBe(ExitCode.OK);
    expect(r.out).toContain("5 records, chain intact and it holds the anchored record 5");
  });

  it("a deleted file is reported MISSING with the records the stream says it held", async () => {
    const saved = `${path}.saved`;
    await rename(path, saved);
    try {
      const r = await coordinatorVerify({ file: path, stream: true }, ctx);
      expect(r.code).toBe(ExitCode.AUDIT_BROKEN);
      const first = r.out.split("\n")[0]!;
      expect(first).toContain("is MISSING: the file does not exist, but the anchor says it held 5 records; records 1 to 5 are gone");
      expect(first).not.toMatch(/intact/);
      // Without the stream there is nothing to compare with, but a missing file is still not "intact".
      const offline = await coordinatorVerify({ file: path }, ctx);
      expect(offline.code).toBe(ExitCode.AUDIT_BROKEN);
      expect(offline.out).toContain("is MISSING");
      expect(offline.out).not.toMatch(/intact/);
    } finally {
      await rename(saved, path);
    }
  });

  it("records cut off the end are reported TRUNCATED, naming the missing records", async () => {
    const all = await lines(path);
    const cut = join(dir, "coordinator-cut.jsonl");
    await writeFile(cut, `${all.slice(0, 3).join("\n")}\n`);
    const r = await coordinatorVerify({ file: cut, stream: true }, ctx);
    expect(r.code).toBe(ExitCode.AUDIT_BROKEN);
    expect(r.out.split("\n")[0]).toBe(
      `audit chain ${cut} is TRUNCATED: it ends at record 3, but the anchor says record 5 existed; records 4 to 5 are missing (anchor: the stream's copy, lk.v1.audit.coordinator.coord1)`,
    );
    const json = JSON.parse((await coordinatorVerify({ file: cut, stream: true, json: true }, ctx)).out) as { ok: boolean; status: string; missing: unknown };
    expect(json).toMatchObject({ ok: false, status: "truncated", missing: { fromSeq: 4, toSeq: 5 } });
  });

  it("a chain restarted from genesis is reported RESTARTED", async () => {
    const fresh = join(dir, "coordinator-fresh.jsonl");
    const log = await AuditLog.open(fresh);
    for (let i = 0; i < 6; i++) await log.append({ source: "coordinator", action: "create", phase: "planned" });
    await log.close();
    const r = await coordinatorVerify({ file: fresh, stream: true }, ctx);
    expect(r.code).toBe(ExitCode.AUDIT_BROKEN);
    expect(r.out.split("\n")[0]).toContain("was RESTARTED from genesis or replaced");
    expect(r.out.split("\n")[0]).not.toMatch(/intact/);
  });
});

describe("an agent's chain, anchored in its signed inventory and the coordinator's KV", () => {
  let stateDir: string;
  let config: string;
  let identity: SigningKey;
  let collector: InventoryCollector;
  let ctx: Partial<CoordinatorContext>;

  /** Open the agent's anchored log, append `n` records, publish one signed inventory, ingest it. */
  async function agentWrites(n: number): Promise<void> {
    const log = await openAnchoredAuditLog(auditLogPath(stateDir), auditAnchorPath(stateDir), { mode: 0o600 });
    for (let i = 0; i < n; i++) await log.append({ source: `agent:${HOST}`, action: "create", phase: "succeeded", laneId: `l${i}` });
    await report(log);
    await log.close();
  }

  async function report(log: AuditLog): Promise<void> {
    const pub = new InventoryPublisher(nc, {
      hostId: HOST,
      identityKey: identity,
      provider: () => Promise.resolve({ lanes: [], unmanaged: [], agentVersion: "test", takenAtMs: Date.now() }),
      controlEnabled: () => false,
      intentHwm: () => 0,
      keysetVersion: () => 1,
      auditHead: () => log.head,
    });
    await collector.ingest(inventorySubject(HOST), await pub.publishNow());
    // snapshot_seq is the clock in ms: keep the next one strictly above.
    await new Promise((r) => setTimeout(r, 5));
  }

  async function agentVerify(args: string[]): Promise<{ code: number; out: string }> {
    let out = "";
    const code = await agentMain(["audit", "verify", ...args], { out: (t) => void (out += t), err: (t) => void (out += t) });
    return { code, out };
  }

  beforeAll(async () => {
    stateDir = join(dir, "agent-state");
    await mkdir(stateDir, { mode: 0o700 });
    config = join(dir, "agent.yaml");
    await writeFile(config, `hostId: ${HOST}\nnats: { url: ${nats.url} }\nstateDir: ${stateDir}\n`);
    identity = generateSigningKey();
    const hosts = new StaticHostRegistry([{ hostId: HOST, identityKey: identity.publicKey, sealingKey: generateSealingKey().publicKey }]);
    collector = await InventoryCollector.open(nc.jetstream(), { hosts, bucket: "lk_inventory_evidence" });
    ctx = { collector };
    await agentWrites(4);
  });

  it("the coordinator keeps the head from the signed inventory, and both sides verify", async () => {
    const anchor = await collector.anchors.get(HOST);
    expect(anchor?.anchor.seq).toBe(4);
    const r = await coordinatorVerify({ host: HOST }, ctx);
    expect(r.code, r.out).toBe(ExitCode.OK);
    expect(r.out).toContain("the latest inventory reports record 4, consistent with the anchor");
    const local = await agentVerify(["--config", config]);
    expect(local.code, local.out).toBe(EXIT.OK);
    expect(local.out).toContain("4 records, chain intact and it holds the anchored record 4 (against the local anchor)");
  });

  it("a deleted file: the agent reports it MISSING, refuses to start a new chain over it, and a copy checked against the coordinator's anchor is MISSING", async () => {
    const log = auditLogPath(stateDir);
    await rename(log, `${log}.saved`);
    try {
      const r = await agentVerify(["--config", config]);
      expect(r.code).toBe(EXIT.AUDIT);
      expect(r.out).toContain("is MISSING: the file does not exist, but the anchor says it held 4 records; records 1 to 4 are gone");
      expect(r.out).not.toMatch(/intact/);
      await expect(openAnchoredAuditLog(log, auditAnchorPath(stateDir))).rejects.toThrow(AuditError);
      await expect(readFile(log)).rejects.toThrow(/ENOENT/); // nothing was created over the evidence
      const c = await coordinatorVerify({ host: HOST, file: log }, ctx);
      expect(c.code).toBe(ExitCode.AUDIT_BROKEN);
      expect(c.out).toContain(`copy ${log} is MISSING`);
    } finally {
      await rename(`${log}.saved`, log);
    }
  });

  it("records cut off the end: reported TRUNCATED against the local anchor and against the coordinator's", async () => {
    const log = auditLogPath(stateDir);
    const saved = await readFile(log, "utf8");
    const anchor = (await collector.anchors.get(HOST))!.anchor;
    try {
      await writeFile(log, `${(await lines(log)).slice(0, 2).join("\n")}\n`);
      const local = await agentVerify(["--config", config]);
      expect(local.code).toBe(EXIT.AUDIT);
      expect(local.out).toContain("is TRUNCATED: it ends at record 2, but the anchor says record 4 existed; records 3 to 4 are missing");
      // The local anchor rolled back with it: the coordinator's anchor still tells.
      await unlink(auditAnchorPath(stateDir));
      const remote = await agentVerify(["--config", config, "--anchor", `${anchor.seq}:${anchor.hash}:${anchor.firstHash}`]);
      expect(remote.code).toBe(EXIT.AUDIT);
      expect(remote.out).toContain("records 3 to 4 are missing");
      const unanchored = await agentVerify(["--config", config]);
      expect(unanchored.out).toContain("no anchor to compare with, so records cut off the end could not be detected");
    } finally {
      await writeFile(log, saved);
      await writeFile(auditAnchorPath(stateDir), `${JSON.stringify({ format: 1, ...anchor })}\n`);
    }
  });

  it("a chain restarted from genesis (log and local anchor both deleted): the coordinator reports RESTARTED", async () => {
    const anchor = (await collector.anchors.get(HOST))!.anchor;
    await rename(auditLogPath(stateDir), join(dir, "evidence.log"));
    await unlink(auditAnchorPath(stateDir));
    await agentWrites(1); // the agent starts over: a new chain, reported in its next signed inventory
    const r = await coordinatorVerify({ host: HOST }, ctx);
    expect(r.code).toBe(ExitCode.AUDIT_BROKEN);
    expect(r.out).toContain("was RESTARTED from genesis");
    expect(r.out).toContain("records 1 to 4 are no longer in it");
    expect(r.out).not.toMatch(/consistent with the anchor/);
    // The anchor was not lowered by the new chain.
    expect((await collector.anchors.get(HOST))!.anchor).toEqual(anchor);
    // On the host, against the coordinator's anchor, the new chain is not the anchored one.
    const onHost = await agentVerify(["--config", config, "--anchor", `${anchor.seq}:${anchor.hash}:${anchor.firstHash}`]);
    expect(onHost.code).toBe(EXIT.AUDIT);
    expect(onHost.out).toContain("was RESTARTED from genesis or replaced");
    expect(onHost.out).not.toMatch(/intact/);
  });
});
