import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureMinimalImage, startPodmanService, type PodmanService } from "../src/podman-service.js";
import { pidExists, runCommand, waitUntil } from "../src/process-util.js";

// Real podman serving the Docker Engine API on a unix socket (DESIGN.md section 9), driven with dockerode as
// the agent's container runtime does.

describe("startPodmanService (real podman, Docker API through dockerode)", () => {
  let podman: PodmanService;
  let docker: Docker;
  let image: string;
  let tcp: Server;
  let port = 0;
  const name = `lk-launcher-test-${randomBytes(4).toString("hex")}`;

  beforeAll(async () => {
    tcp = createServer((s) => {
      s.on("error", () => undefined);
      s.end("hello from the host\n");
    });
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    port = (tcp.address() as { port: number }).port;
    [podman, image] = await Promise.all([startPodmanService(), ensureMinimalImage()]);
    docker = new Docker({ socketPath: podman.socketPath });
  });

  afterAll(async () => {
    await runCommand("podman", ["rm", "--force", "--ignore", name]);
    await podman?.stop();
    await new Promise((r) => tcp?.close(r));
  });

  it("answers ping, version and container listing", async () => {
    expect(podman.dockerHost).toBe(`unix://${podman.socketPath}`);
    expect(String(await docker.ping())).toBe("OK");
    const v = await docker.version();
    expect(v.ApiVersion).toMatch(/^\d+\.\d+/);
    expect(v.Components?.map((c) => c.Name).join(" ")).toMatch(/Podman Engine/);
    expect(Array.isArray(await docker.listContainers({ all: true }))).toBe(true);
  });

  it("creates, starts, inspects, stops and removes a container from a locally imported image", async () => {
    expect(image).toMatch(/^localhost\/lanekeeper\/minimal:[0-9a-f]{16}$/);
    expect((await docker.getImage(image).inspect()).RepoTags).toContain(image);
    const container = await docker.createContainer({
      name,
      Image: image,
      Cmd: ["/bin/sh", "-c", "echo started; exec sleep 1000"],
      Labels: { "dev.lanekeeper.test": "launchers" },
      HostConfig: { NetworkMode: "host" },
    });
    await container.start();
    const running = await container.inspect();
    expect(running.State.Running).toBe(true);
    expect(running.Config.Labels["dev.lanekeeper.test"]).toBe("launchers");
    const listed = await docker.listContainers({ filters: { label: ["dev.lanekeeper.test=launchers"] } });
    expect(listed.map((c) => c.Id)).toContain(running.Id);
    // The container's main process is a real host process.
    expect(pidExists(running.State.Pid)).toBe(true);
    await waitUntil(
      async () => (await container.logs({ stdout: true, stderr: true, follow: false })).toString("utf8").includes("started"),
      { timeoutMs: 10_000, what: "the container's output" },
    );

    await container.stop({ t: 2 });
    const stopped = await container.inspect();
    expect(stopped.State.Running).toBe(false);
    expect(pidExists(running.State.Pid)).toBe(false);
    await container.remove();
    const after = await docker.listContainers({ all: true, filters: { name: [name] } });
    expect(after).toEqual([]);
  });

  it("a container with host networking shares the host's loopback (it sees the host's listening socket)", async () => {
    const c = await docker.createContainer({
      Image: image,
      Cmd: ["/bin/cat", "/proc/net/tcp"],
      HostConfig: { NetworkMode: "host" },
    });
    try {
      await c.start();
      expect((await c.wait()) as { StatusCode: number }).toMatchObject({ StatusCode: 0 });
      const out = (await c.logs({ stdout: true, stderr: true, follow: false })).toString("latin1");
      // 127.0.0.1:<port> in LISTEN state (0A), as /proc/net/tcp spells it.
      const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
      expect(out).toMatch(new RegExp(`0100007F:${hexPort} 00000000:0000 0A`));
    } finally {
      await c.remove({ force: true });
    }
  });

  it("stop() ends the service and removes its directory", async () => {
    const extra = await startPodmanService();
    const { pid, dir, socketPath } = extra;
    expect(existsSync(socketPath)).toBe(true);
    await extra.stop();
    expect(pidExists(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await extra.stop();
  });
});
