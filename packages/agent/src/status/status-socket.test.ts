import { createServer, type Server } from "node:net";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, parseAgentConfig } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listStatusSockets, resolveStatusSocket } from "./status-socket.js";

let dir: string;
const servers: Server[] = [];

async function socketAt(path: string): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  const s = createServer();
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(path, resolve));
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-status-socket-"));
});

afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  await rm(dir, { recursive: true, force: true });
});

const noConfig = join("/nonexistent", "agent.yaml");
const failLoad = (): Promise<never> => Promise.reject(new Error("must not be read"));

describe("resolveStatusSocket", () => {
  it("uses --socket, else the config's socket", async () => {
    expect(await resolveStatusSocket({ socket: "/x.sock", configPath: noConfig, loadConfig: failLoad, defaultConfig: true })).toBe("/x.sock");
    const load = (): Promise<ReturnType<typeof parseAgentConfig>> => Promise.resolve(parseAgentConfig("hostId: b7\nnats: { url: 'nats://x' }\n"));
    expect(await resolveStatusSocket({ configPath: "/proc/self/status", loadConfig: load, defaultConfig: true })).toBe("/run/lanekeeper/b7/agent.sock");
  });

  it("reports an explicit --config that cannot be read instead of guessing", async () => {
    const load = (): Promise<never> => Promise.reject(new ConfigError("agent config", [{ path: "", message: "file not found" }]));
    await expect(resolveStatusSocket({ configPath: noConfig, loadConfig: load, defaultConfig: false, runDir: dir })).rejects.toThrow(ConfigError);
  });

  it("without a readable default config, finds the one agent's socket, or names them all", async () => {
    expect(await resolveStatusSocket({ configPath: noConfig, loadConfig: failLoad, defaultConfig: true, runDir: dir })).toBe(join(dir, "agent.sock"));
    await socketAt(join(dir, "build01", "agent.sock"));
    expect(await resolveStatusSocket({ configPath: noConfig, loadConfig: failLoad, defaultConfig: true, runDir: dir })).toBe(join(dir, "build01", "agent.sock"));
    await socketAt(join(dir, "build02", "agent.sock"));
    await mkdir(join(dir, "empty"));
    expect(await listStatusSockets(dir)).toEqual([join(dir, "build01", "agent.sock"), join(dir, "build02", "agent.sock")]);
    await expect(resolveStatusSocket({ configPath: noConfig, loadConfig: failLoad, defaultConfig: true, runDir: dir })).rejects.toThrow(
      /several agents run on this host .*build01\/agent.sock, .*build02\/agent.sock/,
    );
  });
});
