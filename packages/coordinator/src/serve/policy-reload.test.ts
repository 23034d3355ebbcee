import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePolicy } from "@lanekeeper/shared";
import { syntheticKey } from "@lanekeeper/testing";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { policyDigest } from "../plan/saved-plan.js";
import { PolicyReloader, restartOnlyChanges, type ReloadResult } from "./policy-reload.js";

function policyText(count: number, over: { natsUrl?: string; auditFile?: string; interval?: number } = {}): string {
  return [
    "github: { auth: { tokenEnv: GITHUB_TOKEN } }",
    "coordinator:",
    "  keyFile: /etc/lanekeeper/coordinator.key",
    `  natsUrl: ${over.natsUrl ?? "nats://127.0.0.1:4222"}`,
    `  auditFile: ${over.auditFile ?? "/var/lib/lanekeeper/audit.jsonl"}`,
    ...(over.interval === undefined ? [] : [`  reconcileIntervalMs: ${over.interval}`]),
    "hosts:",
    `  build01: { enrolled: { identityKey: ${syntheticKey(1, 1)}, sealingKey: ${syntheticKey(1, 2)} }, optIn: true, capacity: 4 }`,
    "scopes: { acme/api: { optIn: true } }",
    "pools: { linux: { labels: [linux], backend: systemd, runnerVersion: 2.330.0 } }",
    `lanes: [{ scope: acme/api, pool: linux, count: ${count}, hosts: [build01] }]`,
    "",
  ].join("\n");
}

let dir = "";
let path = "";
let reloader: PolicyReloader | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-reload-"));
  path = join(dir, "lanekeeper.yaml");
  await writeFile(path, policyText(1));
});
afterEach(async () => {
  await reloader?.close();
  reloader = undefined;
  await rm(dir, { recursive: true, force: true });
});

function logger(lines: { level: string; obj: Record<string, unknown>; msg: string }[]) {
  const at = (level: string) => (obj: unknown, msg?: string) => void lines.push({ level, obj: (obj ?? {}) as Record<string, unknown>, msg: msg ?? "" });
  const log = { info: at("info"), warn: at("warn"), error: at("error"), debug: at("debug"), child: () => log };
  return log as unknown as import("@lanekeeper/shared").Logger;
}

function start(over: Partial<ConstructorParameters<typeof PolicyReloader>[0]> = {}) {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const published: boolean[] = [];
  const registry = new Registry();
  let now = 1_000;
  reloader = new PolicyReloader({
    path,
    initial: parsePolicy(policyText(1)),
    registry,
    clock: { now: () => (now += 1000) },
    log: logger(lines),
    debounceMs: 20,
    onPublished: (_r, reloaded) => published.push(reloaded),
    ...over,
  });
  return { r: reloader, lines, published, registry };
}

const count = (r: PolicyReloader): number | undefined => r.current.lanes[0]?.count;

describe("restartOnlyChanges", () => {
  it("names the settings a running serve cannot apply, and nothing for lanes, hosts or drain timing", () => {
    const a = parsePolicy(policyText(1));
    expect(restartOnlyChanges(a, parsePolicy(policyText(3)))).toEqual([]);
    expect(restartOnlyChanges(a, parsePolicy(policyText(1, { natsUrl: "nats://10.0.0.1:4222", auditFile: "/srv/audit.jsonl" })))).toEqual([
      "coordinator.natsServers",
      "coordinator.auditFile",
    ]);
    expect(restartOnlyChanges(a, parsePolicy(policyText(1, { interval: 5000 })))).toEqual(["coordinator.reconcileIntervalMs"]);
  });
});

describe("PolicyReloader", () => {
  it("reloads a changed file, publishes the new revision and says so", async () => {
    const { r, lines, published, registry } = start();
    const before = r.published();
    expect(before.digest).toBe(policyDigest(parsePolicy(policyText(1))));
    await writeFile(path, policyText(3));
    const res = await r.reload("SIGHUP");
    expect(res.status).toBe("reloaded");
    expect(count(r)).toBe(3);
    expect(r.published().digest).toBe(policyDigest(parsePolicy(policyText(3))));
    expect(r.published().loadedAtMs).toBeGreaterThan(before.loadedAtMs);
    expect(published).toEqual([true]);
    expect(lines.find((l) => l.level === "info")?.msg).toMatch(/^policy reloaded \(SIGHUP\): now running sha256:[0-9a-f]{12}$/);
    expect(await registry.metrics()).toMatch(/^lanekeeper_policy_reloads_total\{result="reloaded"\} 1$/m);
    // The same content again: nothing changes, nothing is published.
    expect((await r.reload("file change")).status).toBe("unchanged");
    expect(published).toEqual([true]);
  });

  it("an invalid file keeps the last good policy, logs every `path: message`, counts it and publishes the refusal", async () => {
    const { r, lines, published, registry } = start();
    const good = r.published().digest;
    await writeFile(path, policyText(9));
    const res: ReloadResult = await r.reload("file change");
    expect(res.status).toBe("refused");
    if (res.status !== "refused") return;
    expect(res.error.code).toBe("POLICY_RELOAD_INVALID");
    expect(res.error.problems).toEqual(["lanes[0].count: 9 lanes do not fit: the listed opted-in hosts have a total capacity of 4"]);
    expect(count(r)).toBe(1);
    expect(r.published().digest).toBe(good);
    expect(r.published().reloadFailed?.message).toMatch(/is invalid: .*lanes\[0\]\.count: 9 lanes do not fit/);
    const warn = lines.find((l) => l.level === "warn");
    expect(warn?.msg).toMatch(/^policy reload failed \(file change\), keeping the last good policy sha256:/);
    expect(warn?.obj.errors).toEqual(res.error.problems);
    expect(published).toEqual([false]);
    expect(await registry.metrics()).toMatch(/^lanekeeper_policy_reload_failed 1$/m);
    expect(await registry.metrics()).toMatch(/^lanekeeper_policy_reloads_total\{result="invalid"\} 1$/m);
    // Fixed: the next reload takes, and the refusal no longer stands.
    await writeFile(path, policyText(2));
    expect((await r.reload("file change")).status).toBe("reloaded");
    expect(r.published().reloadFailed).toBeUndefined();
    expect(await registry.metrics()).toMatch(/^lanekeeper_policy_reload_failed 0$/m);
  });

  it("a change only a restart applies is refused with `restart needed`, keeping the old policy", async () => {
    const { r, registry } = start();
    await writeFile(path, policyText(2, { natsUrl: "nats://10.1.2.3:4222" }));
    const res = await r.reload("SIGHUP");
    expect(res.status).toBe("refused");
    if (res.status !== "refused") return;
    expect(res.error.code).toBe("POLICY_RESTART_NEEDED");
    expect(res.error.message).toBe(
      "restart needed: coordinator.natsServers changed, which a running lanekeeper serve cannot apply; restart it to use the new policy",
    );
    expect(count(r)).toBe(1);
    expect(r.current.coordinator.natsUrl).toBe("nats://127.0.0.1:4222");
    expect(await registry.metrics()).toMatch(/^lanekeeper_policy_reloads_total\{result="restart-needed"\} 1$/m);
  });

  it("the serve-specific check and a throwing apply refuse too; apply sees the new policy before it runs", async () => {
    const applied: number[] = [];
    const { r } = start({ restartNeeded: (next) => (next.lanes[0]?.count === 4 ? "lanes[].scaling (test)" : undefined), apply: (next) => void applied.push(next.lanes[0]?.count ?? 0) });
    await writeFile(path, policyText(4));
    const res = await r.reload("SIGHUP");
    expect(res.status === "refused" && res.error.message).toMatch(/^restart needed: lanes\[\]\.scaling \(test\) changed/);
    await writeFile(path, policyText(2));
    expect((await r.reload("SIGHUP")).status).toBe("reloaded");
    expect(applied).toEqual([2]);
    await reloader?.close();
    reloader = new PolicyReloader({ path, initial: r.current, apply: () => { throw new Error("host build01 reuses a key"); } });
    await writeFile(path, policyText(3));
    const bad = await reloader.reload("SIGHUP");
    expect(bad.status === "refused" && bad.error.message).toMatch(/cannot be applied: host build01 reuses a key$/);
    expect(count(reloader)).toBe(2);
  });

  it("watches the file: a write in place and an editor's save (new file renamed over it) both reload, debounced", async () => {
    const { r, published } = start();
    r.watch();
    await writeFile(path, policyText(2));
    await expect.poll(() => count(r), { timeout: 5000 }).toBe(2);
    const tmp = join(dir, ".lanekeeper.yaml.swp");
    await writeFile(tmp, policyText(3));
    await rename(tmp, path);
    await expect.poll(() => count(r), { timeout: 5000 }).toBe(3);
    // After the rename the watch follows the new file: a second save is seen too.
    await writeFile(tmp, policyText(4));
    await rename(tmp, path);
    await expect.poll(() => count(r), { timeout: 5000 }).toBe(4);
    expect(published).toEqual([true, true, true]);
    // Other files in the directory do not reload anything.
    await writeFile(join(dir, "other.txt"), "x");
    await new Promise((res) => setTimeout(res, 200));
    expect(published).toEqual([true, true, true]);
  });
});
