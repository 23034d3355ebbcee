import { parseAgentConfig } from "@lanekeeper/shared";
import type { Logger } from "pino";
import { describe, expect, it } from "vitest";
import { DEFAULT_ENGINE_SOCKETS, resolveAgentDaemonOptions, type AgentDaemonOptions } from "./agent-daemon.js";
import type { InstanceLock } from "./instance-lock.js";
import type { CommandRunner } from "./runtimes/command-runner.js";

function options(yamlExtra = "", over: Partial<AgentDaemonOptions> = {}): AgentDaemonOptions {
  const config = parseAgentConfig(`hostId: build01\nnats:\n  url: nats://127.0.0.1:4222\ntrustFile: /etc/lanekeeper/trust.json\nstateDir: /var/lib/lanekeeper\n${yamlExtra}`);
  return { config, log: {} as Logger, lock: {} as InstanceLock, ...over };
}

const only = (...paths: string[]) => (p: string): boolean => paths.includes(p);

describe("resolveAgentDaemonOptions", () => {
  it("status hooks default to a daemon without NATS", () => {
    const r = resolveAgentDaemonOptions(options(), only());
    expect([r.natsState(), r.intentHwm(), r.keysetVersion(), r.recentIntents()]).toEqual(["disabled", 0, 0, []]);
  });

  it("keeps the hooks it is given", () => {
    const r = resolveAgentDaemonOptions(options("", { natsState: () => "connected", intentHwm: () => 7, keysetVersion: () => 2 }), only());
    expect([r.natsState(), r.intentHwm(), r.keysetVersion()]).toEqual(["connected", 7, 2]);
  });

  it("runs systemd lanes where systemd runs, or with a systemctl handed in", () => {
    expect(resolveAgentDaemonOptions(options(), only()).systemd).toBe(false);
    expect(resolveAgentDaemonOptions(options(), only("/run/systemd/system")).systemd).toBe(true);
    const systemctl: CommandRunner = { run: () => Promise.resolve({ code: 0, signal: null, stdout: "", stderr: "" }) };
    expect(resolveAgentDaemonOptions(options("", { systemctl }), only()).systemd).toBe(true);
  });

  it("uses the configured engine socket only when it exists, else the first default socket that exists", () => {
    const [podman, docker] = DEFAULT_ENGINE_SOCKETS;
    expect(resolveAgentDaemonOptions(options(), only(docker!)).engineSocket).toBe(docker);
    expect(resolveAgentDaemonOptions(options(), only(podman!, docker!)).engineSocket).toBe(podman);
    expect(resolveAgentDaemonOptions(options(), only()).engineSocket).toBeUndefined();
    expect(resolveAgentDaemonOptions(options("containerSocket: /srv/engine.sock\n"), only("/srv/engine.sock", docker!)).engineSocket).toBe("/srv/engine.sock");
    // A configured socket that is missing turns container lanes off; it does not fall back to another engine.
    expect(resolveAgentDaemonOptions(options("containerSocket: /srv/engine.sock\n"), only(docker!)).engineSocket).toBeUndefined();
  });
});
