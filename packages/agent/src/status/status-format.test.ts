import { describe, expect, it } from "vitest";
import { AgentStatusReport, Backend, Health, LaneMode, LaneState, ResultStatus } from "@lanekeeper/shared";
import { formatStatus, statusJson, table } from "./status-format.js";

const report = AgentStatusReport.fromPartial({
  hostId: "build01",
  agentVersion: "0.1.0",
  startedAtMs: 1_000,
  controlEnabled: false,
  lanes: [
    {
      laneId: "l1",
      backend: Backend.BACKEND_SYSTEMD,
      mode: LaneMode.LANE_MODE_PERSISTENT,
      state: LaneState.LANE_STATE_NEEDS_ATTENTION,
      health: Health.HEALTH_CRASH_LOOP,
      runnerId: 12,
      runnerName: "l1",
      held: true,
      holdReason: "disk",
      attentionReason: "CRASH_LOOP",
      recoveryNote: "run lanekeeper lanes restart l1",
    },
  ],
  unmanaged: [{ kind: "systemd-unit", name: "actions.runner.acme-api.x.service", runnerName: "x", reason: "NO_MARKER", state: "active" }],
  recentAudit: [{ seq: 3, atMs: 0, action: "create", phase: "succeeded", laneId: "l1" }],
  recentIntents: [{ intentId: "ab".repeat(16), sequence: 7, action: "restart", laneId: "l1", status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: "LANE_HELD", atMs: 0 }],
});

describe("status output", () => {
  it("renders lanes, notes, unmanaged runners and audit for people", () => {
    const text = formatStatus(report, 61_000);
    expect(text).toContain("host build01  agent 0.1.0  up 60s");
    expect(text).toContain("control: disabled");
    expect(text).toMatch(/l1\s+systemd\s+needs-attention\s+crash-loop\s+-\s+#12 l1/);
    expect(text).toContain("held(disk)");
    expect(text).toContain("! l1 CRASH_LOOP: run lanekeeper lanes restart l1");
    expect(text).toContain("actions.runner.acme-api.x.service");
    expect(text).toMatch(/3\s+1970-01-01T00:00:00.000Z\s+create\s+succeeded\s+l1/);
    expect(text).toMatch(/RECENT INTENTS\nSEQ.*\n7\s+1970-01-01T00:00:00.000Z\s+restart\s+l1\s+rejected\s+LANE_HELD/);
  });

  it("emits stable JSON with enum names", () => {
    const j = JSON.parse(statusJson(report)) as { lanes: { state: string; health: string; backend: string }[] };
    expect(j.lanes[0]).toMatchObject({ state: "LANE_STATE_NEEDS_ATTENTION", health: "HEALTH_CRASH_LOOP", backend: "BACKEND_SYSTEMD" });
  });

  it("says which agent answered, its NATS connection with the last error, and its allowlist", () => {
    const r = AgentStatusReport.fromPartial({
      ...report,
      pid: 4242,
      configPath: "/etc/lanekeeper/agent.yaml",
      statusSocket: "/run/lanekeeper/build01/agent.sock",
      natsState: "reconnecting",
      nats: { state: "reconnecting", server: "nats://10.0.0.5:4222", sinceMs: 31_000, lastError: "cannot reach nats://10.0.0.5:4222 (reconnect attempt 3 failed)", lastErrorAtMs: 51_000, reconnects: 2 },
      trust: { loaded: true, trustFile: "/etc/lanekeeper/trust.json", error: "" },
      keysetVersion: 3,
      controlEnabled: true,
      allowlist: { scopes: ["acme/api"], pools: ["linux-x64"], backends: ["systemd"], actions: ["create", "remove"], images: [], maxLanes: 4 },
    });
    const text = formatStatus(r, 61_000);
    expect(text).toContain("answered by: pid 4242  config /etc/lanekeeper/agent.yaml  socket /run/lanekeeper/build01/agent.sock");
    expect(text).toContain("nats: reconnecting (nats://10.0.0.5:4222) for 30s  reconnects 2");
    expect(text).toContain("  last error (10s ago): cannot reach nats://10.0.0.5:4222 (reconnect attempt 3 failed)");
    expect(text).toContain("trust: key set version 3 from /etc/lanekeeper/trust.json");
    expect(text).toContain("control: ENABLED");
    expect(text).toContain("allowlist: scopes acme/api  pools linux-x64  backends systemd  actions create,remove  images -  max lanes 4");
    const connected = formatStatus(AgentStatusReport.fromPartial({ ...r, nats: { ...r.nats!, state: "connected", lastError: "" } }), 61_000);
    expect(connected).toContain("nats: connected to nats://10.0.0.5:4222 for 30s");
    expect(connected).not.toContain("last error");
    const json = JSON.parse(statusJson(r)) as Record<string, unknown>;
    expect(json).toMatchObject({ pid: 4242, configPath: "/etc/lanekeeper/agent.yaml", nats: { state: "reconnecting", reconnects: 2 }, trust: { loaded: true } });
  });

  it("says loudly that every intent is refused without a trust file", () => {
    const r = AgentStatusReport.fromPartial({
      ...report,
      trust: { loaded: false, trustFile: "/etc/lanekeeper/trust.json", error: "trust file /etc/lanekeeper/trust.json does not exist" },
    });
    const text = formatStatus(r, 61_000);
    expect(text).toContain("TRUST: NO TRUSTED KEY SET: EVERY INTENT IS REFUSED (UNKNOWN_KEY). trust file /etc/lanekeeper/trust.json does not exist");
    expect(text).toContain("install the coordinator's trust file (<keyFile>.keyset.json, written by lanekeeper keys generate) as /etc/lanekeeper/trust.json");
    expect(formatStatus(report, 61_000)).toContain("trust: not loaded yet");
  });

  it("aligns columns", () => {
    expect(table(["A", "BB"], [["xxx", "y"]])).toBe("A    BB\nxxx  y");
  });
});
