#!/usr/bin/env node
// Envelope throughput on one core: sign, verify (verifyIntent, steps 1-6), seal and open of a sealed secret.
// Prints a table, then exactly one JSON line: {"sign_per_s", "verify_per_s", "seal_per_s", "open_per_s"}.
// The JSON figures are operations per second of CPU time consumed by this single-threaded process (so "per
// core"), which stays meaningful when other processes share the machine; the table also shows wall-clock rates.
// sign/verify figures are for a typical intent (restart, a few hundred bytes); the table adds a large one.
// Uses the built @lanekeeper/shared (packages/shared/dist); builds it first when it is missing or stale.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const root = new URL("../..", import.meta.url).pathname;
const dist = join(root, "packages/shared/dist/index.js");

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith(".ts")) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}
if (!existsSync(dist) || statSync(dist).mtimeMs < newestMtime(join(root, "packages/shared/src"))) {
  console.error("building packages/shared ...");
  execFileSync(join(root, "node_modules/.bin/tsc"), ["-b", join(root, "packages/shared")], { stdio: "inherit" });
}
const lk = await import(dist);

const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);

function bench(name, fn) {
  for (let i = 0; i < 200; i++) fn(i); // warm-up
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let now = start;
  while (now - start < DURATION_MS) {
    for (let i = 0; i < 100; i++) fn(n++);
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const perCpuS = Math.round((n * 1000) / cpuMs);
  const perWallS = Math.round((n * 1000) / (now - start));
  return { name, ops: n, perS: perCpuS, perWallS, usPerOp: (1e6 / perCpuS).toFixed(1) };
}

const clock = new lk.FakeClock(1_800_000_000_000);
const coordinator = lk.generateSigningKey();
const store = new lk.TrustedKeyStore(lk.buildKeySet({ version: 1, issuedAtMs: clock.now(), members: [{ key: coordinator }] }));
const agentSealing = lk.generateSealingKey();
const context = lk.sealContext({ purpose: "jit-config", hostId: "build01", laneId: "l1", intentId: "0".repeat(32) });
const jitConfig = Buffer.alloc(2048, 0x41); // a JIT config is ~2 KiB of base64
// Typical intent (drain/restart/stop): a few hundred bytes. verify_per_s is measured on this one.
const small = lk.buildIntent({
  audienceHost: "build01",
  issuer: coordinator,
  sequence: 1,
  nowMs: clock.now(),
  action: { $case: "restart", value: { laneId: "l1", force: false } },
});
// Largest common intent: arm with a sealed 2 KiB JIT config.
const large = lk.buildIntent({
  audienceHost: "build01",
  issuer: coordinator,
  sequence: 2,
  nowMs: clock.now(),
  action: { $case: "arm", value: { laneId: "l1", jitConfig: lk.sealSecret(agentSealing.publicKey, jitConfig, context) } },
});
const smallEnv = lk.signIntent(small, coordinator);
const largeEnv = lk.signIntent(large, coordinator);
const ctx = { hostId: "build01", subjectHost: "build01", keys: store, clock };
const sealed = lk.sealSecret(agentSealing.publicKey, jitConfig, context);

const rows = [
  bench(`sign (signIntent, ${smallEnv.length} B)`, () => lk.signIntent(small, coordinator)),
  bench(`verify (verifyIntent 1-6, ${smallEnv.length} B)`, () => lk.verifyIntent(smallEnv, ctx)),
  bench("seal (2 KiB, X25519+HKDF+AES-GCM)", () => lk.sealSecret(agentSealing.publicKey, jitConfig, context)),
  bench("open (2 KiB)", () => lk.openSecret(agentSealing, sealed, context)),
  bench(`sign (signIntent, ${largeEnv.length} B)`, () => lk.signIntent(large, coordinator)),
  bench(`verify (verifyIntent 1-6, ${largeEnv.length} B)`, () => lk.verifyIntent(largeEnv, ctx)),
];

const load = (await import("node:os")).loadavg()[0].toFixed(2);
console.log(`envelope benchmark, one core, ${DURATION_MS} ms per row, node ${process.version}, load average ${load} (other processes skew figures)`);
console.log(`${"operation".padEnd(40)} ops/cpu-s  cpu-µs/op  ops/wall-s`);
for (const r of rows) {
  console.log(`${r.name.padEnd(40)} ${String(r.perS).padStart(9)} ${r.usPerOp.padStart(10)} ${String(r.perWallS).padStart(11)}`);
}
console.log(
  JSON.stringify({ sign_per_s: rows[0].perS, verify_per_s: rows[1].perS, seal_per_s: rows[2].perS, open_per_s: rows[3].perS }),
);
