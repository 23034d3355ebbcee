import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderNatsConfig, type NatsConfigSpec } from "../src/nats-permissions.js";
import { startNatsServer } from "../src/nats-server.js";
import { runCommand } from "../src/process-util.js";

// renderNatsConfig is pure; the permission rules themselves are proven against the server in
// test/integration/nats-permissions.test.ts. Here: input checks, and that odd passwords survive the file format
// (a real server reads back what we render).

const base: NatsConfigSpec = {
  port: 4222,
  storeDir: "/var/lib/nats/jetstream",
  agents: [{ hostId: "build01", user: "agent-build01", password: "a" }],
  coordinator: { user: "coordinator", password: "c" },
};

describe("renderNatsConfig", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lk-nats-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const parses = async (text: string): Promise<{ code: number | null; out: string }> => {
    const path = join(dir, `c-${Math.random().toString(36).slice(2)}.conf`);
    await writeFile(path, text);
    const r = await runCommand("nats-server", ["-c", path, "-t"]);
    return { code: r.code, out: r.stdout + r.stderr };
  };

  it("renders one permission block per agent, scoped to its own host", () => {
    const text = renderNatsConfig({
      ...base,
      agents: [
        { hostId: "build01", user: "agent-build01", password: "a" },
        { hostId: "build02", user: "agent-build02", password: "b" },
      ],
    });
    expect(text).toContain('publish: { allow: ["lk.v1.inventory.build02", "lk.v1.audit.agent.build02"] }');
    expect(text).toContain('subscribe: { allow: ["lk.v1.intent.build01"] }');
    expect(text.match(/allow_responses: \{ max: 1, expires: "5m" \}/g)).toHaveLength(2);
    expect(text).toContain("limits { max_payload: 131072 }");
  });

  it("writes passwords so that nats-server reads them verbatim (quotes, backslashes, $, #)", async () => {
    const odd = ['p"q\\r', "$HOME", "#not-a-comment", "a b\tc", "}{][,:="];
    const agents = odd.map((password, i) => ({ hostId: `h${i}`, user: `agent-h${i}`, password }));
    const nats = await startNatsServer({ jetstream: false, users: { agents, coordinator: { user: "coordinator", password: "c" } } });
    try {
      for (const a of agents) {
        const nc = await connect({ servers: nats.url, user: a.user, pass: a.password, reconnect: false });
        await nc.close();
        await expect(connect({ servers: nats.url, user: a.user, pass: `${a.password}x`, reconnect: false })).rejects.toThrow(
          /Authorization/i,
        );
      }
    } finally {
      await nats.stop();
    }
    // A bcrypt hash is written as a quoted string too (unquoted, "$2a" would be a variable reference).
    const hash = "$2a$11$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ0123";
    const r = await parses(renderNatsConfig({ ...base, coordinator: { user: "coordinator", password: hash } }));
    expect(r.out).toContain("is valid");
    expect(r.code).toBe(0);
  });

  it("renders a config nats-server accepts without JetStream and with a ports file directory", async () => {
    const r = await parses(renderNatsConfig({ ...base, port: -1, jetstream: false, portsFileDir: dir }));
    expect(r.code).toBe(0);
  });

  it.each([
    ["a bad hostId", { agents: [{ hostId: "Build_01", user: "x", password: "p" }] }, /hostId/],
    ["a duplicate host", { agents: [{ hostId: "h", user: "a", password: "p" }, { hostId: "h", user: "b", password: "p" }] }, /twice/],
    ["a duplicate user", { agents: [{ hostId: "h", user: "coordinator", password: "p" }] }, /twice/],
    ["a user name with spaces", { coordinator: { user: "co ord", password: "p" } }, /user name/],
    ["an empty password", { coordinator: { user: "coordinator", password: "" } }, /empty password/],
    ["a port out of range", { port: 70000 }, /port/],
    ["a tiny agent max payload", { agentMaxPayload: 10 }, /agentMaxPayload/],
    ["a server max payload below the agents'", { maxPayload: 2048, agentMaxPayload: 4096 }, /maxPayload/],
    ["a malformed reply window", { replyWindow: "5 minutes" }, /replyWindow/],
  ] as const)("refuses %s", (_what, patch, message) => {
    expect(() => renderNatsConfig({ ...base, ...patch })).toThrow(message);
  });
});
