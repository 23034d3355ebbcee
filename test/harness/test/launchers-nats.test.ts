import { existsSync } from "node:fs";
import { connect, StringCodec, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerHandle } from "../src/nats-server.js";
import { pidExists } from "../src/process-util.js";

const sc = StringCodec();

describe("startNatsServer (real nats-server)", () => {
  let nats: NatsServerHandle;
  const conns: NatsConnection[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
  });

  afterAll(async () => {
    for (const c of conns) await c.close().catch(() => undefined);
    await nats?.stop();
  });

  const open = async (): Promise<NatsConnection> => {
    const nc = await connect({ servers: nats.url, reconnect: false });
    conns.push(nc);
    return nc;
  };

  it("listens on a loopback port and relays pub/sub and request/reply", async () => {
    expect(nats.url).toBe(`nats://127.0.0.1:${nats.port}`);
    expect(nats.port).toBeGreaterThan(0);
    const a = await open();
    const b = await open();
    const sub = b.subscribe("lk.test.echo", {
      callback: (_e, m) => {
        m.respond(sc.encode(`echo:${sc.decode(m.data)}`));
      },
    });
    await b.flush();
    const reply = await a.request("lk.test.echo", sc.encode("hi"), { timeout: 5000 });
    expect(sc.decode(reply.data)).toBe("echo:hi");
    sub.unsubscribe();
  });

  it("serves JetStream KV, and restart() keeps port and store", async () => {
    const nc = await open();
    const kv = await nc.jetstream().views.kv("lk_launcher_test", { history: 1 });
    await kv.put("host.build01.sequence", sc.encode("41"));
    const port = nats.port;
    const pidBefore = nats.pid;

    await nats.restart();
    expect(nats.port).toBe(port);
    expect(nats.pid).not.toBe(pidBefore);
    expect(pidExists(pidBefore!)).toBe(false);

    const nc2 = await open();
    const kv2 = await nc2.jetstream().views.kv("lk_launcher_test");
    const entry = await kv2.get("host.build01.sequence");
    expect(entry && sc.decode(entry.value)).toBe("41");
  });

  it("halt() makes the server unreachable until resume()", async () => {
    await nats.halt({ signal: "SIGKILL" });
    expect(nats.pid).toBeUndefined();
    await expect(connect({ servers: nats.url, reconnect: false, timeout: 1000 })).rejects.toThrow();
    await nats.resume();
    const nc = await open();
    const kv = await nc.jetstream().views.kv("lk_launcher_test");
    expect(sc.decode((await kv.get("host.build01.sequence"))!.value)).toBe("41");
  });
});

describe("startNatsServer options and stop()", () => {
  it("without JetStream the JetStream API is unavailable; stop() kills the process and removes the temp dir", async () => {
    const nats = await startNatsServer({ jetstream: false });
    const pid = nats.pid!;
    try {
      const nc = await connect({ servers: nats.url, reconnect: false });
      await expect(nc.jetstreamManager()).rejects.toThrow();
      await nc.close();
    } finally {
      await nats.stop();
    }
    expect(pidExists(pid)).toBe(false);
    expect(existsSync(nats.dir)).toBe(false);
    await nats.stop(); // idempotent
  });

  it("appends raw config text", async () => {
    const nats = await startNatsServer({ jetstream: false, config: "max_payload: 4096" });
    try {
      const nc = await connect({ servers: nats.url, reconnect: false });
      expect(nc.info?.max_payload).toBe(4096);
      await nc.close();
    } finally {
      await nats.stop();
    }
  });

  it("fails with the server's own message when the config is invalid", async () => {
    await expect(startNatsServer({ config: "no_such_option: 1" })).rejects.toMatchObject({
      code: "LAUNCH_FAILED",
      message: expect.stringContaining("no_such_option"),
    });
  });
});
