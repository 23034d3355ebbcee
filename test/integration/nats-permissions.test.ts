import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { fileURLToPath } from "node:url";
import {
  AckPolicy,
  connect,
  StringCodec,
  type Msg,
  type NatsConnection,
  type NatsError,
} from "nats";
import {
  agentAuditSubject,
  ALL_AUDIT_SUBJECTS,
  ALL_INTENT_SUBJECTS,
  ALL_INVENTORY_SUBJECTS,
  AUDIT_SUBJECT_PREFIX,
  INTENT_SUBJECT_PREFIX,
  intentSubject,
  inventorySubject,
} from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MAX_PAYLOAD_BYTES } from "../harness/src/launcher-limits.js";
import { startNatsServer, type NatsServerHandle } from "../harness/src/nats-server.js";
import { renderNatsConfig, type NatsAgentUser, type NatsCoordinatorUser } from "../harness/src/nats-permissions.js";
import { runCommand, waitUntil } from "../harness/src/process-util.js";

// One agent per host and a coordinator, against the real nats-server, with the permission model of
// install/nats-server.example.conf (rendered by renderNatsConfig). Passwords are generated here and never printed.

const sc = StringCodec();
/** A coordinator audit subject with no instance token: coordinators may publish it, agents may not. */
const COORDINATOR_AUDIT = `${AUDIT_SUBJECT_PREFIX}coordinator`;
const password = (): string => randomBytes(24).toString("base64url");
const agentA: NatsAgentUser = { hostId: "build01", user: "agent-build01", password: password() };
const agentB: NatsAgentUser = { hostId: "build02", user: "agent-build02", password: password() };
const coordinatorUser: NatsCoordinatorUser = { user: "coordinator", password: password() };

interface Violation {
  operation: string;
  subject: string;
}

/** A connection plus the permission violations the server reported on it. */
interface Client {
  nc: NatsConnection;
  violations: Violation[];
}

describe("NATS per-host permissions (real nats-server)", () => {
  let nats: NatsServerHandle;
  let coord: Client;
  let a: Client;
  let b: Client;
  const all: Client[] = [];

  const login = async (user: string, pass: string): Promise<Client> => {
    const nc = await connect({ servers: nats.url, user, pass, reconnect: false });
    const client: Client = { nc, violations: [] };
    void (async () => {
      for await (const s of nc.status()) {
        const ctx = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
        if (ctx) client.violations.push({ operation: ctx.operation, subject: ctx.subject });
      }
    })();
    all.push(client);
    return client;
  };

  const violation = (c: Client, operation: "publish" | "subscription", subject: string): Promise<Violation> =>
    waitUntil(() => c.violations.find((v) => v.operation === operation && v.subject === subject), {
      timeoutMs: 10_000,
      what: `a ${operation} violation on ${subject}`,
    });

  /**
   * Collects what `observer` receives on `subject`. `fence()` publishes a permitted marker from `publisher`
   * and resolves once it arrives: NATS keeps one connection's messages in order, so anything the publisher
   * sent before the fence and the observer has not seen by then was dropped by the server.
   */
  const watch = async (observer: Client, subject: string) => {
    const got: Msg[] = [];
    const sub = observer.nc.subscribe(subject, { callback: (_e, m) => got.push(m) });
    await observer.nc.flush();
    return {
      got,
      async fence(publisher: Client, fenceSubject: string): Promise<void> {
        const token = `fence-${randomBytes(6).toString("hex")}`;
        publisher.nc.publish(fenceSubject, sc.encode(token));
        await waitUntil(() => got.some((m) => sc.decode(m.data) === token), {
          timeoutMs: 10_000,
          what: `fence ${token} on ${fenceSubject}`,
        });
      },
      stop: () => sub.unsubscribe(),
    };
  };

  beforeAll(async () => {
    nats = await startNatsServer({ users: { agents: [agentA, agentB], coordinator: coordinatorUser } });
    coord = await login(coordinatorUser.user, coordinatorUser.password);
    a = await login(agentA.user, agentA.password);
    b = await login(agentB.user, agentB.password);
  });

  afterAll(async () => {
    for (const c of all) await c.nc.close().catch(() => undefined);
    await nats?.stop();
  });

  it("rejects a wrong password and an unknown user", async () => {
    await expect(connect({ servers: nats.url, user: agentA.user, pass: "wrong", reconnect: false })).rejects.toThrow(
      /Authorization/i,
    );
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/Authorization/i);
  });

  it("an agent receives its own intents and answers them; the coordinator gets the answer", async () => {
    const sub = a.nc.subscribe(intentSubject("build01"), {
      callback: (_e, m) => {
        m.respond(sc.encode(`result-for:${sc.decode(m.data)}`));
      },
    });
    await a.nc.flush();
    const reply = await coord.nc.request(intentSubject("build01"), sc.encode("intent-1"), { timeout: 10_000 });
    expect(sc.decode(reply.data)).toBe("result-for:intent-1");
    sub.unsubscribe();
    await a.nc.flush();
  });

  it("an agent cannot subscribe to another host's intents, nor to wildcards", async () => {
    for (const subject of [intentSubject("build02"), ALL_INTENT_SUBJECTS, `${INTENT_SUBJECT_PREFIX}>`, ">", inventorySubject("build02")]) {
      const errors: NatsError[] = [];
      a.nc.subscribe(subject, {
        callback: (e) => {
          if (e) errors.push(e);
        },
      });
      await violation(a, "subscription", subject);
      expect(errors[0]?.code).toBe("PERMISSIONS_VIOLATION");
    }
    // And B's intents still reach only B.
    const seenByB: string[] = [];
    const subB = b.nc.subscribe(intentSubject("build02"), {
      callback: (_e, m) => {
        seenByB.push(sc.decode(m.data));
        m.respond(sc.encode("ok"));
      },
    });
    await b.nc.flush();
    await coord.nc.request(intentSubject("build02"), sc.encode("for-b"), { timeout: 10_000 });
    expect(seenByB).toEqual(["for-b"]);
    subB.unsubscribe();
    await b.nc.flush();
  });

  it("an agent publishes its own inventory and audit, never another host's or an intent", async () => {
    const inv = await watch(coord, ALL_INVENTORY_SUBJECTS);
    const audit = await watch(coord, ALL_AUDIT_SUBJECTS);
    a.nc.publish(inventorySubject("build02"), sc.encode("forged-inventory"));
    a.nc.publish(agentAuditSubject("build02"), sc.encode("forged-audit"));
    a.nc.publish(intentSubject("build02"), sc.encode("forged-intent"));
    a.nc.publish(COORDINATOR_AUDIT, sc.encode("forged-coordinator-audit"));
    await violation(a, "publish", inventorySubject("build02"));
    await violation(a, "publish", agentAuditSubject("build02"));
    await violation(a, "publish", intentSubject("build02"));
    await violation(a, "publish", COORDINATOR_AUDIT);
    a.nc.publish(inventorySubject("build01"), sc.encode("own-inventory"));
    await inv.fence(a, inventorySubject("build01"));
    await audit.fence(a, agentAuditSubject("build01"));
    const delivered = (w: { got: Msg[] }): string[] =>
      w.got.filter((m) => !sc.decode(m.data).startsWith("fence-")).map((m) => `${m.subject}=${sc.decode(m.data)}`);
    expect(delivered(inv)).toEqual([`${inventorySubject("build01")}=own-inventory`]);
    expect(delivered(audit)).toEqual([]);
    inv.stop();
    audit.stop();
  });

  it("an agent cannot answer another host's intent, nor answer its own twice", async () => {
    let replyOfB: string | undefined;
    let answerB: (() => void) | undefined;
    const subB = b.nc.subscribe(intentSubject("build02"), {
      callback: (_e, m) => {
        replyOfB = m.reply;
        // B answers only after A has tried to hijack the reply subject.
        answerB = () => {
          m.respond(sc.encode("genuine-result"));
          m.respond(sc.encode("second-result"));
        };
      },
    });
    await b.nc.flush();
    const pending = coord.nc.request(intentSubject("build02"), sc.encode("intent-for-b"), { timeout: 10_000 });
    const reply = await waitUntil(() => replyOfB, { timeoutMs: 10_000, what: "B to receive its intent" });
    a.nc.publish(reply, sc.encode("forged-result"));
    a.nc.publish("_INBOX.anything", sc.encode("forged-inbox"));
    await violation(a, "publish", reply);
    await violation(a, "publish", "_INBOX.anything");
    answerB!();
    expect(sc.decode((await pending).data)).toBe("genuine-result");
    await violation(b, "publish", reply); // the second answer: one reply per intent
    subB.unsubscribe();
    await b.nc.flush();
  });

  it("an agent has no JetStream and no request inbox", async () => {
    await expect(a.nc.jetstreamManager()).rejects.toThrow();
    a.nc.publish("$JS.API.STREAM.LIST", sc.encode("{}"));
    await violation(a, "publish", "$JS.API.STREAM.LIST");
    a.nc.publish("$KV.lk_state.host.build02.sequence", sc.encode("0"));
    await violation(a, "publish", "$KV.lk_state.host.build02.sequence");
  });

  it("the agents' account has a low max_payload, enforced by the server, not only by the client", async () => {
    expect(a.nc.info?.max_payload).toBe(AGENT_MAX_PAYLOAD_BYTES);
    expect(coord.nc.info?.max_payload).toBeGreaterThan(AGENT_MAX_PAYLOAD_BYTES);
    expect(() => a.nc.publish(inventorySubject("build01"), new Uint8Array(AGENT_MAX_PAYLOAD_BYTES + 1))).toThrow(
      /MAX_PAYLOAD/,
    );
    // A hostile agent does not use nats.js: speak the protocol directly.
    const answer = await rawPublish(nats.port, agentA, inventorySubject("build01"), AGENT_MAX_PAYLOAD_BYTES + 1);
    expect(answer).toMatch(/-ERR 'Maximum Payload Violation'/);
    const ok = await rawPublish(nats.port, agentA, inventorySubject("build01"), 1024);
    expect(ok).toMatch(/^\+OK\r\n\+OK\r\n/);
  });

  it("the coordinator can do what it needs: intents, inventory, KV state, the audit stream", async () => {
    const js = coord.nc.jetstream();
    const jsm = await coord.nc.jetstreamManager();

    // KV: per-host sequence and lane records, including a watcher (flow control on $JS.FC).
    const kv = await js.views.kv("lk_state", { history: 5 });
    const watcher = await kv.watch({ key: "host.build01.>" });
    const seen: string[] = [];
    void (async () => {
      for await (const e of watcher) seen.push(`${e.key}=${sc.decode(e.value)}`);
    })();
    await kv.put("host.build01.sequence", sc.encode("7"));
    await kv.create("host.build01.lane.l1", sc.encode("{}"));
    expect(sc.decode((await kv.get("host.build01.sequence"))!.value)).toBe("7");
    await waitUntil(() => seen.length >= 2, { timeoutMs: 10_000, what: "the KV watcher" });
    expect(seen).toEqual(["host.build01.sequence=7", "host.build01.lane.l1={}"]);
    watcher.stop();

    // Audit stream: coordinator records via JetStream publish, agents' records arrive through the import.
    await jsm.streams.add({ name: "LK_AUDIT", subjects: [ALL_AUDIT_SUBJECTS] });
    const ack = await js.publish(COORDINATOR_AUDIT, sc.encode("coordinator-record"));
    expect(ack.stream).toBe("LK_AUDIT");
    a.nc.publish(agentAuditSubject("build01"), sc.encode("agent-record"));
    await a.nc.flush();
    await waitUntil(async () => (await jsm.streams.info("LK_AUDIT")).state.messages >= 2, {
      timeoutMs: 10_000,
      what: "two audit records in the stream",
    });
    // An ordered consumer with default options: with nats.js 2.29 against nats-server 2.9, passing
    // `deliver_policy` to consumers.get() makes next()/fetch() hang (the consumer never delivers).
    const consumer = await js.consumers.get("LK_AUDIT");
    const records: string[] = [];
    const batch = await consumer.fetch({ max_messages: 2, expires: 5000 });
    for await (const m of batch) records.push(`${m.subject}=${sc.decode(m.data)}`);
    expect(records).toEqual([`${COORDINATOR_AUDIT}=coordinator-record`, `${agentAuditSubject("build01")}=agent-record`]);

    // A durable pull consumer with explicit acks ($JS.ACK).
    await jsm.consumers.add("LK_AUDIT", { durable_name: "exporter", ack_policy: AckPolicy.Explicit });
    const durable = await js.consumers.get("LK_AUDIT", "exporter");
    const first = await durable.next({ expires: 5000 });
    expect(first?.subject).toBe(COORDINATOR_AUDIT);
    expect(await first!.ackAck()).toBe(true);

    // The coordinator cannot write an agent's audit subject.
    coord.nc.publish(agentAuditSubject("build01"), sc.encode("forged-by-coordinator"));
    await violation(coord, "publish", agentAuditSubject("build01"));
  });

  it("the shipped example config is valid for nats-server and has the rendered permission shape", async () => {
    const examplePath = fileURLToPath(new URL("../../install/nats-server.example.conf", import.meta.url));
    const check = await runCommand("nats-server", ["-c", examplePath, "-t"]);
    expect(check.stderr + check.stdout).toContain("is valid");
    expect(check.code).toBe(0);
    const example = await readFile(examplePath, "utf8");
    const rendered = renderNatsConfig({
      port: 4222,
      storeDir: "/var/lib/nats/jetstream",
      agents: [{ hostId: "build01", user: "agent-build01", password: "x" }],
      coordinator: { user: "coordinator", password: "y" },
    });
    for (const fragment of permissionFragments(rendered)) expect(example).toContain(fragment);
  });
});

/** Lines of a rendered config that carry permissions, imports, exports and limits (not passwords or paths). */
function permissionFragments(config: string): string[] {
  return config
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^(publish|subscribe|allow_responses|limits|jetstream: enabled|\{ (service|stream))/.test(l));
}

/**
 * Connects with the raw protocol (verbose, so each accepted op answers +OK) and publishes `size` bytes;
 * resolves with everything the server said after INFO.
 */
function rawPublish(port: number, agent: NatsAgentUser, subject: string, size: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: "127.0.0.1", port });
    let text = "";
    let sent = false;
    const finish = (): void => {
      sock.destroy();
      resolve(text.replace(/^INFO [^\r]*\r\n/, ""));
    };
    sock.setTimeout(10_000, () => {
      sock.destroy();
      reject(new Error(`raw publish: no answer; got ${JSON.stringify(text.slice(0, 200))}`));
    });
    sock.on("error", reject);
    sock.on("close", finish);
    sock.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (!sent && text.includes("\r\n")) {
        sent = true;
        const connectOp = JSON.stringify({ verbose: true, pedantic: false, user: agent.user, pass: agent.password });
        sock.write(`CONNECT ${connectOp}\r\nPUB ${subject} ${size}\r\n`);
        // The server judges the size from the PUB line. Sending an oversized body after it would race the
        // server's close (unread bytes turn the close into a reset that can swallow the -ERR).
        if (size <= AGENT_MAX_PAYLOAD_BYTES) sock.write(Buffer.concat([Buffer.alloc(size, 0x61), Buffer.from("\r\nPING\r\n")]));
      }
      if (/PONG\r\n|-ERR/.test(text)) setImmediate(finish);
    });
  });
}
