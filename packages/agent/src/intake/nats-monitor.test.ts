import { DebugEvents, Events } from "nats";
import { createLogger } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { displayServer, NatsMonitor } from "./nats-monitor.js";

function monitor(): { m: NatsMonitor; clock: { t: number; now(): number }; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ component: "test", level: "debug", destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  const clock = { t: 1_000, now: () => clock.t };
  return { m: new NatsMonitor("nats://agent:s3cret@10.0.0.5:4222", log, clock), clock, lines };
}

describe("NatsMonitor", () => {
  it("never shows the credentials of the configured URL", () => {
    expect(displayServer("nats://agent:s3cret@10.0.0.5:4222")).toBe("nats://10.0.0.5:4222");
    expect(displayServer("tls://h1:4222, 10.0.0.6:4222")).toBe("tls://h1:4222,nats://10.0.0.6:4222");
    expect(JSON.stringify(monitor().m.snapshot())).not.toContain("s3cret");
  });

  it("follows connect, disconnect, failed reconnect attempts and reconnect, logging each change", () => {
    const { m, clock, lines } = monitor();
    expect(m.snapshot()).toMatchObject({ state: "connecting", sinceMs: 1_000, lastError: "" });
    m.connectFailed(new Error("CONNECTION_REFUSED"));
    expect(m.snapshot()).toMatchObject({ state: "connecting", lastError: "cannot connect to nats://10.0.0.5:4222: CONNECTION_REFUSED", lastErrorAtMs: 1_000 });
    clock.t = 2_000;
    m.connected("10.0.0.5:4222");
    expect(m.snapshot()).toMatchObject({ state: "connected", server: "nats://10.0.0.5:4222", sinceMs: 2_000 });
    clock.t = 5_000;
    m.onStatus({ type: Events.Disconnect, data: "10.0.0.5:4222" });
    expect(m.snapshot()).toMatchObject({ state: "disconnected", sinceMs: 5_000, lastError: "lost the connection to nats://10.0.0.5:4222" });
    m.onStatus({ type: DebugEvents.Reconnecting, data: "10.0.0.5:4222" });
    expect(m.current).toBe("reconnecting");
    clock.t = 7_000;
    m.onStatus({ type: DebugEvents.Reconnecting, data: "10.0.0.5:4222" });
    expect(m.snapshot()).toMatchObject({ state: "reconnecting", lastError: "cannot reach nats://10.0.0.5:4222 (reconnect attempt 1 failed)", lastErrorAtMs: 7_000 });
    clock.t = 9_000;
    m.onStatus({ type: Events.Reconnect, data: "10.0.0.5:4222" });
    expect(m.snapshot()).toMatchObject({ state: "connected", sinceMs: 9_000, reconnects: 1 });
    // The last problem stays visible after recovery, with its time.
    expect(m.snapshot().lastError).toContain("reconnect attempt 1 failed");
    const msgs = lines.map((l) => l.msg);
    expect(msgs).toEqual(expect.arrayContaining(["cannot connect to NATS; retrying", "NATS connected", "NATS disconnected; reconnecting (intents and inventory wait)", "NATS reconnected"]));
    expect(lines.find((l) => l.msg === "NATS reconnected")).toMatchObject({ reconnects: 1, downMs: 4_000 });
    m.closed(new Error("boom"));
    expect(m.snapshot()).toMatchObject({ state: "closed", lastError: "connection closed: boom" });
  });
});
