import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LANE_UNIT_HARDENING } from "../../../packages/agent/src/runtimes/systemd-unit.js";
import { startSystemdSandbox, type SystemdSandbox } from "../src/systemd-sandbox.js";

// What works inside the sandbox, directive by directive: the agent's unit files (lanes and the agent itself)
// are written against this table, and test/harness/README.md ("Launchers") reports it. Every probe runs twice:
// without the directive its check must fail (so the check can tell), with it the unit must succeed.

interface Outcome {
  ok: boolean;
  /** Result/ExecMainStatus, e.g. "exit-code/1". */
  status: string;
  output: string;
}

interface Probe {
  name: string;
  directives: string[];
  /** Shell check that succeeds only when the directive took effect. */
  check: string;
}

const node = process.execPath;

/**
 * The `[Service]` hardening lines of the shipped agent unit, read from the file itself so this test cannot drift
 * from it: everything but ExecStart, the user and group, restart policy and the install-time `@...@` paths (the
 * test supplies its own writable path).
 */
async function agentUnitHardening(): Promise<string[]> {
  const text = await readFile(new URL("../../../install/lanekeeper-agent.service", import.meta.url), "utf8");
  const service = text.slice(text.indexOf("[Service]"), text.indexOf("[Install]"));
  const skip = /^(ExecStart|User|Group|Type|Restart|RestartSec)=|@[A-Z_]+@/;
  return service
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^[A-Z][A-Za-z]+=/.test(l) && !skip.test(l));
}

/** Directives that work and are enforced in the sandbox. */
function enforcedProbes(root: string, port: number): Probe[] {
  return [
    { name: "user", directives: ["User=nobody"], check: 'test "$(id -u)" = 65534' },
    { name: "dynamic-user", directives: ["DynamicUser=yes"], check: 'test "$(id -u)" -ge 61184 && test "$(id -u)" -le 65519' },
    { name: "no-new-privileges", directives: ["NoNewPrivileges=yes"], check: 'grep -q "^NoNewPrivs:[[:space:]]*1" /proc/self/status' },
    { name: "protect-system-strict", directives: ["ProtectSystem=strict"], check: mountFlag("/", "ro") },
    { name: "protect-system-full", directives: ["ProtectSystem=full"], check: mountFlag("/etc", "ro") },
    {
      name: "read-write-paths",
      directives: ["ProtectSystem=strict", `ReadWritePaths=${root}/rw`],
      check: `touch ${root}/rw/ok && ! touch ${root}/not-writable 2>/dev/null`,
    },
    { name: "protect-home-yes", directives: ["ProtectHome=yes"], check: 'test "$(stat -c %a /root)" = 0' },
    { name: "protect-home-read-only", directives: ["ProtectHome=read-only"], check: mountFlag("/root", "ro") },
    { name: "private-tmp", directives: ["PrivateTmp=yes"], check: `awk '$5=="/tmp"{r=$4} END{exit r ~ /systemd-private/ ? 0 : 1}' /proc/self/mountinfo` },
    { name: "private-devices", directives: ["PrivateDevices=yes"], check: "! test -e /dev/vda && ! test -e /dev/net/tun" },
    { name: "protect-kernel-tunables", directives: ["ProtectKernelTunables=yes"], check: mountFlag("/proc/sys", "ro") },
    { name: "protect-kernel-modules", directives: ["ProtectKernelModules=yes"], check: capabilityDropped(16) },
    { name: "protect-kernel-logs", directives: ["ProtectKernelLogs=yes"], check: "! head -c 100 /dev/kmsg >/dev/null 2>&1" },
    { name: "protect-control-groups", directives: ["ProtectControlGroups=yes"], check: mountFlag("/sys/fs/cgroup", "ro") },
    { name: "protect-clock", directives: ["ProtectClock=yes"], check: capabilityDropped(25) },
    { name: "protect-hostname", directives: ["ProtectHostname=yes"], check: 'test "$(readlink /proc/self/ns/uts)" != "$(readlink /proc/1/ns/uts)"' },
    { name: "protect-proc", directives: ["ProtectProc=invisible"], check: `awk '$5=="/proc"{r=$0} END{exit r ~ /hidepid=invisible/ ? 0 : 1}' /proc/self/mountinfo` },
    { name: "proc-subset", directives: ["ProcSubset=pid"], check: "! test -e /proc/cpuinfo" },
    { name: "restrict-namespaces", directives: ["RestrictNamespaces=yes"], check: "! unshare --mount true 2>/dev/null" },
    { name: "restrict-suid-sgid", directives: ["RestrictSUIDSGID=yes"], check: "f=$(mktemp) && ! chmod u+s $f 2>/dev/null" },
    { name: "lock-personality", directives: ["LockPersonality=yes"], check: "! setarch i386 true 2>/dev/null" },
    { name: "restrict-realtime", directives: ["RestrictRealtime=yes"], check: "! chrt -f 1 true 2>/dev/null" },
    {
      name: "system-call-filter",
      directives: ["SystemCallFilter=@system-service", "SystemCallArchitectures=native"],
      check: "! swapoff /lk-no-such-swap 2>&1 | grep -q 'No such file'",
    },
    { name: "restrict-address-families", directives: ["RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"], check: "! ip link show lo >/dev/null 2>&1" },
    { name: "capability-bounding-set", directives: ["CapabilityBoundingSet="], check: 'grep -q "^CapBnd:[[:space:]]*0000000000000000" /proc/self/status' },
    {
      name: "ambient-capabilities",
      directives: ["User=nobody", "AmbientCapabilities=CAP_NET_BIND_SERVICE"],
      check: 'b=$(awk "/^CapAmb/{print \\$2}" /proc/self/status); test $(( 0x$b >> 10 & 1 )) = 1',
    },
    { name: "private-network", directives: ["PrivateNetwork=yes"], check: 'test "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)"' },
    { name: "private-users", directives: ["PrivateUsers=yes"], check: "! grep -q '4294967295' /proc/self/uid_map" },
    { name: "ip-address-deny", directives: ["IPAddressDeny=any"], check: `! timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' 2>/dev/null` },
    { name: "device-policy", directives: ["DevicePolicy=closed"], check: "! bash -c 'exec 3<>/dev/net/tun' 2>/dev/null" },
    { name: "load-credential", directives: [`LoadCredential=token:${root}/credential`], check: 'test "$(cat "$CREDENTIALS_DIRECTORY/token")" = sealed-secret' },
    { name: "environment-file", directives: [`EnvironmentFile=${root}/env`], check: 'test "$LK_PROBE" = from-env-file' },
    // Through $RUNTIME_DIRECTORY, not the path: the control unit runs beside the probe, whose /run/lk-probe it would see.
    { name: "runtime-directory", directives: ["RuntimeDirectory=lk-probe"], check: 'test "$RUNTIME_DIRECTORY" = /run/lk-probe && test -d /run/lk-probe' },
    { name: "umask", directives: ["UMask=0077"], check: 'test "$(umask)" = 0077' },
  ];
}

/** Succeeds when the last mount at `path` in this process's mount namespace has option `flag`. */
function mountFlag(path: string, flag: string): string {
  return `awk '$5=="${path}"{o=$6} END{exit ("," o ",") ~ /,${flag},/ ? 0 : 1}' /proc/self/mountinfo`;
}

/** Succeeds when capability number `bit` is not in the bounding set. */
function capabilityDropped(bit: number): string {
  return `b=$(awk "/^CapBnd/{print \\$2}" /proc/self/status); test $(( 0x$b >> ${bit} & 1 )) = 0`;
}

/** A unit file line `ExecStart=/bin/sh -c '<check>'`, escaping what systemd would expand ($, %). */
function execStart(check: string): string {
  const quoted = check.replace(/'/g, `'"'"'`).replace(/%/g, "%%").replace(/\$/g, "$$$$");
  return `ExecStart=/bin/sh -c '${quoted}'`;
}

describe("hardening directives inside the systemd sandbox", () => {
  let sb: SystemdSandbox;
  let tcp: Server;
  let port = 0;

  /**
   * Writes oneshot units, reloads once and starts them all in one transaction (jobs run in parallel),
   * then reads each one's result: one daemon-reload instead of one per probe keeps this file fast.
   */
  const runAll = async (units: Record<string, string[]>): Promise<Record<string, Outcome>> => {
    const names = Object.keys(units);
    for (const [unit, lines] of Object.entries(units)) {
      const out = `${sb.root}/out/${unit}.log`;
      await sb.writeUnit(
        unit,
        ["[Service]", "Type=oneshot", ...lines, `StandardOutput=file:${out}`, `StandardError=file:${out}`, ""].join("\n"),
      );
    }
    expect((await sb.systemctl("daemon-reload")).code).toBe(0);
    await sb.systemctl("start", ...names);
    const shown = await sb.systemctl("show", "--property=Id,Result,ExecMainStatus", ...names);
    const results: Record<string, Outcome> = {};
    for (const block of shown.stdout.trim().split("\n\n")) {
      const p = Object.fromEntries(block.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      const id = p.Id ?? "";
      const output = await readFile(`${sb.root}/out/${id}.log`, "utf8").catch(() => "");
      results[id] = { ok: p.Result === "success", status: `${p.Result}/${p.ExecMainStatus}`, output };
    }
    expect(Object.keys(results).sort()).toEqual([...names].sort());
    return results;
  };
  const run = async (unit: string, lines: string[]): Promise<Outcome> => (await runAll({ [unit]: lines }))[unit]!;

  beforeAll(async () => {
    tcp = createServer((s) => {
      s.on("error", () => undefined);
      s.end("x");
    });
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    port = (tcp.address() as { port: number }).port;
    sb = await startSystemdSandbox();
    await mkdir(`${sb.root}/out`, { mode: 0o777 });
    await mkdir(`${sb.root}/rw`, { mode: 0o777 });
    await writeFile(`${sb.root}/credential`, "sealed-secret", { mode: 0o600 });
    await writeFile(`${sb.root}/env`, "LK_PROBE=from-env-file\n", { mode: 0o600 });
  });

  afterAll(async () => {
    await sb?.stop();
    await new Promise((r) => tcp?.close(r));
  });

  it("enforces every listed directive (each check fails without it and passes with it)", async () => {
    const probes = enforcedProbes(sb.root, port);
    const units: Record<string, string[]> = {};
    for (const p of probes) {
      units[`control-${p.name}.service`] = [execStart(p.check)];
      units[`probe-${p.name}.service`] = [execStart(p.check), ...p.directives];
    }
    const results = await runAll(units);
    const report: string[] = [];
    for (const p of probes) {
      const control = results[`control-${p.name}.service`]!;
      const probe = results[`probe-${p.name}.service`]!;
      report.push(
        `${p.name}: without=${control.ok ? "PASSES (bad probe)" : "fails"} with=${probe.ok ? "ok" : `FAILED ${probe.status} ${probe.output.trim()}`}`,
      );
    }
    expect(report.filter((l) => !l.endsWith("without=fails with=ok"))).toEqual([]);
  });

  it("accepts resource limits but cannot enforce them: no cgroup v2 controller is available on this host", async () => {
    const r = await run("probe-limits.service", [
      execStart("test ! -e /sys/fs/cgroup/system.slice/probe-limits.service/memory.max"),
      "MemoryMax=64M",
      "CPUQuota=50%",
      "TasksMax=32",
    ]);
    expect(r).toMatchObject({ ok: true });
    const props = await sb.unitProperties("probe-limits.service", ["MemoryMax", "CPUQuotaPerSecUSec", "TasksMax"]);
    expect(props).toEqual({ MemoryMax: "67108864", CPUQuotaPerSecUSec: "500ms", TasksMax: "32" });
    expect((await sb.exec("cat", ["/sys/fs/cgroup/cgroup.controllers"])).stdout.trim()).toBe("");
  });

  it("MemoryDenyWriteExecute= kills node (V8 needs writable+executable memory), so node units must not use it", async () => {
    const sh = await run("probe-mdwe-sh.service", [execStart("true"), "MemoryDenyWriteExecute=yes"]);
    expect(sh.ok).toBe(true);
    const js = await run("probe-mdwe-node.service", [`ExecStart=${node} -e "1"`, "MemoryDenyWriteExecute=yes"]);
    expect(js.ok).toBe(false);
    expect(js.output).toMatch(/Fatal error|Check failed/);
  });

  it("runs node under the agent unit's and a lane unit's full hardening sets", async () => {
    // install/lanekeeper-agent.service, with the test's own writable path in place of the install-time ones.
    const agentSet = await agentUnitHardening();
    expect(agentSet).toEqual(expect.arrayContaining(["ProtectSystem=strict", "NoNewPrivileges=yes", "RuntimeDirectory=lanekeeper"]));
    const agent = await run("probe-agent-set.service", [
      `ExecStart=${node} -e "require('fs').writeFileSync('${sb.root}/rw/agent-was-here', 'x')"`,
      `ReadWritePaths=${sb.root}/rw`,
      ...agentSet,
    ]);
    expect(agent).toMatchObject({ ok: true });
    // packages/agent LANE_UNIT_HARDENING itself, as an unprivileged lane user.
    const lane = await run("probe-lane-set.service", [
      `ExecStart=${node} -e "process.stdout.write(String(process.getuid()))"`,
      "User=nobody",
      ...LANE_UNIT_HARDENING,
    ]);
    expect(lane).toMatchObject({ ok: true, output: "65534" });
  });
});
