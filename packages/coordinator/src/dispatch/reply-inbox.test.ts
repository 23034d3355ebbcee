// The dispatcher's request/reply inbox against a real nats-server: replies reach the request that asked (many in
// flight, answered out of order), no responders and timeouts are told apart by code, a late reply is dropped,
// and closing the connection fails what still waits.
import { startNatsServer, type NatsServerHandle } from "@lanekeeper/harness";
import { connect, type Msg, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplyError, ReplyInbox } from "./reply-inbox.js";

let nats: NatsServerHandle;
let requester: NatsConnection;
let responder: NatsConnection;
const te = new TextEncoder();
const td = new TextDecoder();

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: false });
  requester = await connect({ servers: nats.url });
  responder = await connect({ servers: nats.url });
});
afterAll(async () => {
  await requester?.close();
  await responder?.close();
  await nats?.stop();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ReplyError);
  return (err as ReplyError).code;
}

describe("ReplyInbox", () => {
  it("answers each request with its own reply, however the replies are ordered", async () => {
    const held: Msg[] = [];
    const sub = responder.subscribe("t.echo", {
      callback: (_e, m) => {
        held.push(m);
        // Answer in reverse order once all arrived.
        if (held.length === 50) for (const h of held.reverse()) h.respond(te.encode(`re:${td.decode(h.data)}`));
      },
    });
    await responder.flush();
    const inbox = new ReplyInbox(requester);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => inbox.request("t.echo", te.encode(String(i)), 10_000)));
    expect(replies.map((m) => td.decode(m.data))).toEqual(Array.from({ length: 50 }, (_, i) => `re:${i}`));
    expect(inbox.pending).toBe(0);
    sub.unsubscribe();
  });

  it("no responders is DISPATCH_NO_RESPONDERS, at once", async () => {
    const inbox = new ReplyInbox(requester);
    const t0 = Date.now();
    expect(await codeOf(inbox.request("t.nobody", te.encode("x"), 10_000))).toBe("DISPATCH_NO_RESPONDERS");
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(inbox.pending).toBe(0);
  });

  it("no reply by the deadline is DISPATCH_TIMEOUT, each request by its own deadline; a late reply is dropped", async () => {
    const held: Msg[] = [];
    const sub = responder.subscribe("t.slow", { callback: (_e, m) => held.push(m) });
    await responder.flush();
    const inbox = new ReplyInbox(requester);
    const t0 = Date.now();
    const long = inbox.request("t.slow", te.encode("long"), 1_500);
    const short = inbox.request("t.slow", te.encode("short"), 200);
    expect(await codeOf(short)).toBe("DISPATCH_TIMEOUT");
    const shortAfter = Date.now() - t0;
    expect(shortAfter).toBeGreaterThanOrEqual(190);
    expect(shortAfter).toBeLessThan(1_400);
    expect(inbox.pending).toBe(1);
    expect(await codeOf(long)).toBe("DISPATCH_TIMEOUT");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_490);
    // Replies after the deadline go nowhere (and break nothing).
    for (const m of held) m.respond(te.encode("late"));
    await responder.flush();
    expect(inbox.pending).toBe(0);
    sub.unsubscribe();
  });

  it("closing the connection fails the requests still waiting", async () => {
    const nc = await connect({ servers: nats.url });
    const sub = responder.subscribe("t.never", { callback: () => undefined });
    await responder.flush();
    const inbox = new ReplyInbox(nc);
    const waiting = inbox.request("t.never", te.encode("x"), 60_000);
    await nc.flush();
    await nc.close();
    expect(await codeOf(waiting)).toBe("DISPATCH_TIMEOUT");
    await expect(inbox.request("t.never", te.encode("y"), 1_000)).rejects.toThrow();
    sub.unsubscribe();
  });
});
