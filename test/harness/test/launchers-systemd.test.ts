import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, readlink, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pidExists, waitForExit, waitUntil } from "../src/process-util.js";
import { startSystemdSandbox, type SystemdSandbox } from "../src/systemd-sandbox.js";

// A real systemd as PID 1 of its own namespaces (DESIGN.md section 9). Each assertion here is something the
// agent's systemd runtime and the suites that run the agent inside the sandbox rely on.

const WORKER_UNIT = `[Unit]
Description=lanekeeper sandbox test worker
[Service]
# A main process with a background child, like run.sh with Runner.Listener and Runner.Worker.
ExecStart=/bin/sh -c 'sleep 1000 & echo inside > /tmp/lk-unit-wrote-this; exec sleep 1001'
`;

describe("startSystemdSandbox (real systemd in namespaces)", () => {
  let sb: SystemdSandbox;
  const marker = `/tmp/lk-host-marker-${randomBytes(6).toString("hex")}`;
  const seenHostPids = new Set<number>();
  let tcp: Server;
  let tcpPort = 0;

  beforeAll(async () => {
    await writeFile(marker, "host\n");
    tcp = createServer((s) => {
      s.on("error", () => undefined);
      s.end("hello from the host\n");
    });
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    tcpPort = (tcp.address() as { port: number }).port;
    sb = await startSystemdSandbox({ units: { "lk-test-worker.service": WORKER_UNIT } });
    seenHostPids.add(sb.pid);
  });

  afterAll(async () => {
    await sb?.stop();
    await rm(marker, { force: true });
    await new Promise((r) => tcp?.close(r));
  });

  it("boots systemd as PID 1 of new PID and cgroup namespaces, in its own cgroup below the test's", async () => {
    expect((await sb.systemctl("is-system-running")).stdout.trim()).toMatch(/^(running|degraded)$/);
    expect((await sb.exec("cat", ["/proc/1/comm"])).stdout.trim()).toBe("systemd");
    expect(await readlink(`/proc/${sb.pid}/ns/pid`)).not.toBe(await readlink("/proc/self/ns/pid"));
    expect(await readlink(`/proc/${sb.pid}/ns/cgroup`)).not.toBe(await readlink("/proc/self/ns/cgroup"));
    // From the host, systemd's cgroup is below the sandbox's cgroup, not at the hierarchy's root.
    const hostView = (await readFile(`/proc/${sb.pid}/cgroup`, "utf8")).match(/^0::(.*)$/m)?.[1];
    expect(hostView).toMatch(/\/lk-sandbox-lk-sd-[^/]+\/init\.scope$/);
    expect(join(sb.cgroupPath, "init.scope").endsWith(hostView!)).toBe(true);
    // From inside, the same cgroup is the root of its hierarchy.
    expect((await sb.exec("cat", ["/proc/1/cgroup"])).stdout).toMatch(/^0::\/init\.scope$/m);
    // The network is the host's: units and the agent reach services on the host's loopback.
    const r = await sb.exec("bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${tcpPort}; cat <&3`]);
    expect(r.stdout).toBe("hello from the host\n");
  });

  it("knows only the test's units and the stub targets, never the host's", async () => {
    const files = (await sb.systemctl("list-unit-files", "--no-legend", "--no-pager")).stdout;
    const names = files
      .split("\n")
      .map((l) => l.split(/\s+/)[0])
      .filter((n): n is string => !!n);
    expect(names).toContain("lk-test-worker.service");
    expect(names.filter((n) => !n.endsWith(".target") && n !== "lk-test-worker.service")).toEqual([]);
    for (const hostUnit of ["systemd-tmpfiles-clean.timer", "systemd-tmpfiles-setup.service", "cron.service"]) {
      const st = await sb.systemctl("cat", hostUnit);
      expect(st.code).not.toBe(0);
    }
  });

  it("starts and stops a unit; MainPID and ControlGroup work and its processes are visible from the host", async () => {
    expect((await sb.systemctl("start", "lk-test-worker.service")).code).toBe(0);
    await sb.waitForUnitState("lk-test-worker.service", "running", 30_000);
    const props = await sb.unitProperties("lk-test-worker.service", ["MainPID", "ControlGroup", "ActiveState"]);
    expect(props.ActiveState).toBe("active");
    expect(props.ControlGroup).toBe("/system.slice/lk-test-worker.service");
    const mainNsPid = Number(props.MainPID);
    expect(mainNsPid).toBeGreaterThan(1);

    // From the host: the unit's cgroup lists host PIDs, main process and background child.
    const hostPids = await waitUntil(async () => {
      const p = await sb.unitHostPids("lk-test-worker.service");
      return p.length === 2 ? p : undefined;
    }, { timeoutMs: 10_000, what: "two processes in the unit's cgroup" });
    for (const p of hostPids) seenHostPids.add(p);
    const cmdlines = await Promise.all(
      hostPids.map(async (p) => (await readFile(`/proc/${p}/cmdline`, "utf8")).split("\0").join(" ").trim()),
    );
    expect(cmdlines.sort()).toEqual(["sleep 1000", "sleep 1001"]);
    // Host PID ↔ sandbox PID, and the sandbox's own /proc seen through /proc/<pid>/root.
    const nsPids = await Promise.all(hostPids.map((p) => sb.sandboxPidOf(p)));
    expect(nsPids).toContain(mainNsPid);
    const viaRoot = await readFile(`/proc/${sb.pid}/root/proc/${mainNsPid}/cmdline`, "utf8");
    expect(viaRoot.split("\0").join(" ").trim()).toBe("sleep 1001");
    expect(await sb.sandboxPidOf(process.pid)).toBeUndefined();

    // Inside: the agent sees the same cgroup at the same path as on a real host.
    const inside = await sb.exec("cat", ["/sys/fs/cgroup/system.slice/lk-test-worker.service/cgroup.procs"]);
    expect(inside.stdout.trim().split("\n").map(Number).sort()).toEqual(nsPids.map(Number).sort());

    // Stopping kills the whole cgroup, background child included.
    expect((await sb.systemctl("stop", "lk-test-worker.service")).code).toBe(0);
    await sb.waitForUnitState("lk-test-worker.service", "inactive", 30_000);
    await waitUntil(() => hostPids.every((p) => !pidExists(p)), { timeoutMs: 10_000, what: "the unit's processes to exit" });
  });

  it("keeps /tmp, /dev/shm, /etc and enablement private: the host's /tmp marker survives and stays invisible inside", async () => {
    // The unit above wrote /tmp/lk-unit-wrote-this inside; the host's /tmp never sees it.
    expect((await sb.exec("cat", ["/tmp/lk-unit-wrote-this"])).stdout).toBe("inside\n");
    expect(existsSync("/tmp/lk-unit-wrote-this")).toBe(false);
    expect((await sb.exec("test", ["-e", marker])).code).toBe(1);
    const shm = `lk-sandbox-shm-${randomBytes(4).toString("hex")}`;
    expect((await sb.exec("sh", ["-c", `echo inside > /dev/shm/${shm}`])).code).toBe(0);
    expect(existsSync(`/dev/shm/${shm}`)).toBe(false);
    expect(await readFile(marker, "utf8")).toBe("host\n");

    // /etc is a private copy: a write inside lands in etcDir, not in the host's /etc.
    const probe = `lk-sandbox-probe-${randomBytes(4).toString("hex")}`;
    expect((await sb.exec("sh", ["-c", `echo inside > /etc/${probe}`])).code).toBe(0);
    expect(existsSync(`/etc/${probe}`)).toBe(false);
    expect(await readFile(join(sb.etcDir!, probe), "utf8")).toBe("inside\n");

    // `systemctl enable` (done by PID 1 from the unit path) writes into the sandbox's /etc/systemd/system.
    await sb.writeUnit(
      "lk-test-enable.service",
      "[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n",
    );
    expect((await sb.systemctl("daemon-reload")).code).toBe(0);
    const en = await sb.systemctl("enable", "lk-test-enable.service");
    expect(en.code).toBe(0);
    expect((await sb.systemctl("is-enabled", "lk-test-enable.service")).stdout.trim()).toBe("enabled");
    expect(existsSync(join(sb.configUnitDir, "multi-user.target.wants", "lk-test-enable.service"))).toBe(true);
    expect(existsSync("/etc/systemd/system/multi-user.target.wants/lk-test-enable.service")).toBe(false);
  });

  it("spawn() runs a long-lived command inside; kill() reaches the command, not only nsenter", async () => {
    const child = sb.spawn("sh", ["-c", 'echo "pid=$$"; cat /proc/self/cgroup; exec sleep 1002']);
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    await waitUntil(() => out.includes("0::"), { timeoutMs: 10_000, what: "the spawned command's output" });
    const nsPid = Number(out.match(/pid=(\d+)/)?.[1]);
    expect(nsPid).toBeGreaterThan(1);
    // Inside its cgroup namespace the command sits below the root, like any process on a host.
    expect(out).toMatch(/^0::\/lk-harness$/m);
    const hostPid = await waitUntil(async () => {
      for (const p of (await readFile(join(sb.cgroupPath, "lk-harness", "cgroup.procs"), "utf8")).split("\n")) {
        if (p && (await sb.sandboxPidOf(Number(p))) === nsPid) return Number(p);
      }
      return undefined;
    }, { timeoutMs: 10_000, what: "the spawned command's host PID" });
    seenHostPids.add(hostPid);
    child.kill("SIGTERM");
    const status = await waitForExit(child, 10_000);
    expect(status.signal).toBe("SIGTERM");
    expect(pidExists(hostPid)).toBe(false);
  });

  it("stop() leaves no process, no cgroup and no directory behind", async () => {
    const keep = await sb.unitHostPids("init.scope");
    for (const p of keep) seenHostPids.add(p);
    expect((await sb.systemctl("start", "lk-test-worker.service")).code).toBe(0);
    for (const p of await sb.unitHostPids("lk-test-worker.service")) seenHostPids.add(p);
    const straggler = sb.spawn("sleep", ["1003"]);
    await waitUntil(() => straggler.pid !== undefined, { timeoutMs: 5000, what: "spawn" });

    await sb.stop();
    for (const p of seenHostPids) expect(pidExists(p), `pid ${p} still exists`).toBe(false);
    await waitForExit(straggler, 10_000);
    expect(existsSync(sb.cgroupPath)).toBe(false);
    expect(existsSync(sb.root)).toBe(false);
    expect(await readFile(marker, "utf8")).toBe("host\n");
    await sb.stop(); // idempotent
  });
});
