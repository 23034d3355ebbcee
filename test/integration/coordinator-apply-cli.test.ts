// The `lanekeeper` operator commands, run in-process through the real CLI program (commander, exit-code map,
// output) against the real world: a policy file on disk, the coordinator key file, NATS login with the password
// from an environment variable, the GitHub emulator, a real agent running lanes in a real systemd.
import { readFile, stat, writeFile } from "node:fs/promises";
import { encodeSignedKeySet, formatTrustFile, parseTrustFile, RejectReason, signingKeyFromPem, signingKeyToPem, signKeySet } from "@lanekeeper/shared";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../../packages/coordinator/src/cli/cli-io.js";
import { ExitCode } from "../../packages/coordinator/src/cli/exit-codes.js";
import { runCli } from "../../packages/coordinator/src/cli/program.js";
import { eventually } from "./agent-fixture.js";
import { startApplyWorld, type ApplyWorld } from "./coordinator-apply-fixture.js";

let w: ApplyWorld;
let policyPath = "";
let auditPath = "";
let laneId = "";

interface Run {
  code: number;
  out: string;
  err: string;
  json: unknown;
}

async function lk(args: string[], env: Record<string, string> = {}, confirm: ((q: string) => Promise<boolean>) | null = null): Promise<Run> {
  let out = "";
  let err = "";
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    env: {
      PATH: process.env.PATH,
      LANEKEEPER_POLICY: policyPath,
      LK_TEST_GITHUB_TOKEN: w.gh.token,
      LK_TEST_NATS_PASSWORD: w.coordinatorUser.password,
      LANEKEEPER_OPERATOR: "carol",
      ...env,
    },
    cwd: w.dir,
    now: () => Date.now(),
  };
  // No terminal in tests (unless a test plays the prompt): commands that need confirmation must be told --yes.
  const code = await runCli(args, io, { confirm });
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch {
    json = undefined;
  }
  return { code, out, err, json };
}

beforeAll(async () => {
  w = await startApplyWorld();
  policyPath = join(w.dir, "lanekeeper.yaml");
  auditPath = join(w.dir, "cli-audit.jsonl");
  await writeFile(policyPath, w.policyText(1, { auditFile: auditPath, natsPasswordEnv: "LK_TEST_NATS_PASSWORD" }));
});
afterAll(async () => {
  await w?.close();
});

describe("lanekeeper CLI: apply, status, lanes, audit", () => {
  it("apply --dry-run --json: the plan as a report, nothing created, exit 0", async () => {
    const r = await lk(["apply", "--dry-run", "--json"]);
    expect(r.code, r.err).toBe(ExitCode.OK);
    expect(r.json).toMatchObject({ dryRun: true, ok: true, outcomes: [{ kind: "create", status: "dry-run" }] });
    expect(await w.gh.control.listRunners()).toEqual([]);
  });

  it("apply without --yes and without a terminal refuses with a clear message (exit 2), nothing created", async () => {
    const r = await lk(["apply"]);
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.err).toMatch(/--yes/);
    expect(r.out).toMatch(/create/); // the plan was shown first
    expect(r.out).toMatch(/^1 action\(s\) planned\.$/m); // without plan's "Nothing was changed.": apply is about to change
    expect(await w.gh.control.listRunners()).toEqual([]);
    expect(await w.store.list()).toEqual([]);
  });

  it("apply --concurrency outside 1..64 is refused before anything is read (exit 2)", async () => {
    const r = await lk(["apply", "--yes", "--concurrency", "0"]);
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.err).toMatch(/--concurrency.*must be an integer from 1 to 64/);
    expect(await w.store.list()).toEqual([]);
  });

  it("apply --yes --json: the lane is created; progress events are JSON lines on stderr", async () => {
    const r = await lk(["apply", "--yes", "--json", "--concurrency", "2"]);
    expect(r.code, r.err).toBe(ExitCode.OK);
    const report = r.json as { ok: boolean; outcomes: { kind: string; status: string; laneId: string }[] };
    expect(report.outcomes.map((o) => [o.kind, o.status])).toEqual([["create", "succeeded"]]);
    laneId = report.outcomes[0]!.laneId;
    // stderr carries JSON lines: progress events ({"event": ...}) and, at warn level, pino log lines.
    const lines = r.err.split("\n").filter((l) => l.startsWith("{"));
    if (process.env.LK_DEBUG) console.log(lines.filter((l) => !l.startsWith('{"event"')));
    const events = lines.map((l) => JSON.parse(l) as { event?: { type: string } }).flatMap((x) => (x.event === undefined ? [] : [x.event.type]));
    expect(events).toContain("action-start");
    expect(events).toContain("action-end");
    expect((await w.gh.control.listRunners()).find((x) => x.name === laneId)?.status).toBe("online");
  });

  it("status shows the lane by state from the record, GitHub and the host", async () => {
    await eventually(async () => {
      const r = await lk(["status", "--json"]);
      const lanes = (r.json as { lanes: { laneId: string; record: string; github: string; host: string }[] } | undefined)?.lanes ?? [];
      return lanes.some((l) => l.laneId === laneId && l.record === "active" && l.github === "online" && l.host === "running");
    }, "status: active, online, running");
    const human = await lk(["status"]);
    expect(human.code).toBe(ExitCode.OK);
    expect(human.out).toMatch(new RegExp(`${laneId}\\s+build01\\s+acme/api/linux-x64\\s+active\\s+online\\s+running`));
  });

  it("lanes drain then release: drained (lk-draining), then back in service; human progress on stderr", async () => {
    const d = await lk(["lanes", "drain", laneId]);
    expect(d.code, d.err).toBe(ExitCode.OK);
    expect(d.err).toMatch(new RegExp(`→ drain ${laneId} on build01`));
    expect(d.out).toMatch(/drain\s+\S+\s+build01\s+succeeded/);
    expect((await w.gh.control.listRunners()).find((x) => x.name === laneId)?.labels).toContain("lk-draining");
    const rel = await lk(["lanes", "release", laneId, "--json"]);
    expect(rel.code, rel.err).toBe(ExitCode.OK);
    expect((await w.gh.control.listRunners()).find((x) => x.name === laneId)?.labels).toContain("linux");
    expect(await w.store.get(laneId)).toMatchObject({ state: "active" });
  });

  it("lanes remove with a busy lane and a short --deadline: exit 8, needs-attention, the recovery note names the commands", async () => {
    const job = await w.gh.control.createJob("acme/api", { labels: ["linux"], durationMs: 120_000 });
    expect((await w.gh.control.waitForJob(job.id, "in_progress", 30_000)).status).toBe("in_progress");
    const r = await lk(["lanes", "remove", laneId, "--deadline", "2s"]);
    expect(r.code).toBe(ExitCode.NEEDS_ATTENTION);
    expect(r.err).toMatch(/waiting for the running job to finish/);
    expect(r.out).toContain(`lanekeeper lanes remove ${laneId} --force --deadline 10m`);
    expect(r.out).toContain(`lanekeeper lanes remove ${laneId} --deadline 2h`);
    expect((await w.gh.control.getJob(job.id)).status).toBe("in_progress");
    // --force needs an explicit --deadline and a confirmation: without them it is a usage error, and nothing happens.
    const noDeadline = await lk(["lanes", "remove", laneId, "--force", "--json"]);
    expect(noDeadline.code).toBe(ExitCode.USAGE);
    expect(noDeadline.json).toMatchObject({ error: { code: "USAGE" } });
    expect((noDeadline.json as { error: { message: string } }).error.message).toContain("--force needs --deadline");
    const unconfirmed = await lk(["lanes", "remove", laneId, "--force", "--deadline", "1s"]);
    expect(unconfirmed.code).toBe(ExitCode.USAGE);
    expect(unconfirmed.err).toMatch(/FORCE_NOT_CONFIRMED/);
    expect(unconfirmed.err).toMatch(/--yes/);
    // On a terminal the prompt asks; "no" changes nothing.
    const asked: string[] = [];
    const declined = await lk(["lanes", "remove", laneId, "--force", "--deadline", "1s"], {}, (q) => {
      asked.push(q);
      return Promise.resolve(false);
    });
    expect(declined.code).toBe(ExitCode.OK);
    expect(declined.err).toContain("Nothing was changed.");
    expect(asked[0]).toMatch(new RegExp(`lanes remove ${laneId}: if a job still runs there after 1s, stop the lane and kill the job`));
    expect((await w.gh.control.getJob(job.id)).status).toBe("in_progress");
    expect(await w.store.get(laneId)).toMatchObject({ state: "needs-attention" });
    const forced = await lk(["lanes", "remove", laneId, "--force", "--deadline", "1s", "--yes", "--json"]);
    expect(forced.code, forced.err).toBe(ExitCode.OK);
    expect(forced.json).toMatchObject({ ok: true, outcomes: [{ status: "succeeded", forcedBy: "carol" }] });
    expect((await w.gh.control.getJob(job.id)).conclusion).toBe("cancelled");
  });

  it("lanes on an unknown lane: exit 6 with a message that says where to look", async () => {
    const r = await lk(["lanes", "drain", "no-such-lane", "--json"]);
    expect(r.code).toBe(ExitCode.INPUT);
    expect(r.json).toMatchObject({ error: { code: "LANE_NOT_FOUND" } });
  });

  it("audit verify and tail; a tampered copy is reported with its broken line (exit 10)", async () => {
    const v = await lk(["audit", "verify", "--json", "--stream"]);
    expect(v.code, v.out + v.err).toBe(ExitCode.OK);
    const lines = (await readFile(auditPath, "utf8")).split("\n").filter((l) => l !== "");
    expect(v.json).toMatchObject({ ok: true, count: lines.length, stream: { ok: true, mine: lines.length } });
    const t = await lk(["audit", "tail", "-n", "3", "--json"]);
    expect((t.json as unknown[]).length).toBe(3);
    const copy = join(w.dir, "tampered.jsonl");
    lines[4] = lines[4]!.replace(/"at":(\d+)/, (_m, n: string) => `"at":${Number(n) + 1}`);
    await writeFile(copy, `${lines.join("\n")}\n`);
    const bad = await lk(["audit", "verify", "--file", copy]);
    expect(bad.code).toBe(ExitCode.AUDIT_BROKEN);
    expect(bad.out).toMatch(/BROKEN at line 5/);
  });

  it("keys root-init writes the root key 0600 (never printed, never replaced) and its public key; generate pins it", async () => {
    const rootFile = join(w.dir, "fresh-root.key");
    const r = await lk(["keys", "root-init", "--out", rootFile, "--json"]);
    expect(r.code, r.err).toBe(ExitCode.OK);
    expect(r.json).toMatchObject({ rootKeyFile: rootFile, rootPublicKeyFile: `${rootFile}.pub` });
    expect((await stat(rootFile)).mode & 0o777).toBe(0o600);
    const pem = await readFile(rootFile, "utf8");
    expect(pem).toMatch(/BEGIN PRIVATE KEY/);
    expect(r.out).not.toContain("PRIVATE KEY");
    expect(r.out).not.toContain(pem.split("\n")[1]);
    expect(await readFile(`${rootFile}.pub`, "utf8")).toMatch(/BEGIN PUBLIC KEY/);
    const again = await lk(["keys", "root-init", "--out", rootFile, "--json"]);
    expect(again.code).toBe(ExitCode.INPUT);
    expect(again.json).toMatchObject({ error: { code: "KEY_FILE_EXISTS" } });
    expect(await readFile(rootFile, "utf8")).toBe(pem);

    const other = join(w.dir, "other.yaml");
    await writeFile(other, w.policyText(1, { auditFile: auditPath }).replace(/keyFile: .*/, `keyFile: ${JSON.stringify(join(w.dir, "fresh.pem"))}`));
    // Without the root public key there is no trust file: every key set pins a root.
    const noRoot = await lk(["keys", "generate", "--policy", other, "--json"]);
    expect(noRoot.code).toBe(ExitCode.USAGE);
    const g = await lk(["keys", "generate", "--policy", other, "--root-public-key", `${rootFile}.pub`, "--json"]);
    expect(g.code, g.err).toBe(ExitCode.OK);
    expect(g.json).toMatchObject({ keyFile: join(w.dir, "fresh.pem"), trustFile: join(w.dir, "fresh.pem.keyset.json"), version: 1, rootKeyId: (r.json as { rootKeyId: string }).rootKeyId });
    expect(await readFile(join(w.dir, "fresh.pem"), "utf8")).toMatch(/BEGIN PRIVATE KEY/);
    const trust = parseTrustFile(await readFile(join(w.dir, "fresh.pem.keyset.json"), "utf8"));
    expect(trust.rootKeys.map((k) => k.keyId)).toEqual([(r.json as { rootKeyId: string }).rootKeyId]);
    const again2 = await lk(["keys", "generate", "--policy", other, "--root-public-key", `${rootFile}.pub`, "--json"]);
    expect(again2.code).toBe(ExitCode.INPUT);
    expect(again2.json).toMatchObject({ error: { code: "KEY_FILE_EXISTS" } });
  });

  it("keys rotate --root-key --push: announce, then activate; the agent trusts the new key and the CLI signs with it", async () => {
    await writeFile(join(w.dir, "coordinator.pem.keyset.json"), formatTrustFile(w.keySet));
    const rootFile = join(w.dir, "root.key");
    await writeFile(rootFile, signingKeyToPem(w.rootKey), { mode: 0o600 });
    // No root key, or the online key passed as the root: refused before anything is signed or sent.
    expect((await lk(["keys", "rotate", "--push", "--json"])).code).toBe(ExitCode.USAGE);
    const online = await lk(["keys", "rotate", "--push", "--root-key", join(w.dir, "coordinator.pem"), "--json"]);
    expect(online.code).toBe(ExitCode.INPUT);
    expect(online.json).toMatchObject({ error: { code: "KEY_ROTATION_INVALID" } });
    expect(w.agent.trust.version).toBe(1);

    const announce = await lk(["keys", "rotate", "--push", "--root-key", rootFile, "--json"]);
    expect(announce.code, announce.out + announce.err).toBe(ExitCode.OK);
    expect(announce.json).toMatchObject({ phase: "announce", version: 2, pushed: [{ hostId: "build01", ok: true, version: 2 }] });
    const activate = await lk(["keys", "rotate", "--push", "--root-key", rootFile, "--json"]);
    expect(activate.code, activate.out + activate.err).toBe(ExitCode.OK);
    expect(activate.json).toMatchObject({ phase: "activate", version: 3, keyFilesUpdated: true, pushed: [{ ok: true, version: 3 }] });
    const keys = (activate.json as { keys: { keyId: string; status: string }[] }).keys;
    expect(keys.map((k) => k.status).sort()).toEqual(["active", "retired"]);
    expect(keys.find((k) => k.status === "retired")?.keyId).toBe(w.coordinatorKey.keyId);
    expect(w.agent.trust.version).toBe(3);
    // Intents are now signed with the new key, and the agent accepts them.
    const apply = await lk(["apply", "--yes", "--json"]);
    expect(apply.code, apply.out + apply.err).toBe(ExitCode.OK);
    expect((apply.json as { outcomes: { kind: string; status: string }[] }).outcomes.map((o) => [o.kind, o.status])).toEqual([["create", "succeeded"]]);
  });

  it("keys push: an update signed by the online key only is refused before sending; --root-key signs it; a re-push is KEYSET_VERSION", async () => {
    const rootFile = join(w.dir, "root.key");
    const set = parseTrustFile(await readFile(join(w.dir, "coordinator.pem.keyset.json"), "utf8"));
    const online = signingKeyFromPem(await readFile(join(w.dir, "coordinator.pem"), "utf8"));
    // The takeover a stolen online key would try: floor raised, its own update file.
    const takeover = { ...set, version: set.version + 1, hwmFloor: 2 ** 53 - 2, issuedAtMs: Date.now() };
    const byOnline = join(w.dir, "by-online.update");
    await writeFile(byOnline, encodeSignedKeySet(signKeySet(takeover, [online])));
    const refused = await lk(["keys", "push", byOnline, "--json"]);
    expect(refused.code).toBe(ExitCode.INPUT);
    expect(refused.json).toMatchObject({ error: { code: "KEY_ROTATION_INVALID" } });
    expect(w.agent.trust.version).toBe(3);

    const legit = { ...set, version: set.version + 1, hwmFloor: 0, issuedAtMs: Date.now() };
    const unsigned = join(w.dir, "legit.update");
    await writeFile(unsigned, encodeSignedKeySet(signKeySet(legit, [online])));
    const pushed = await lk(["keys", "push", unsigned, "--root-key", rootFile, "--json"]);
    expect(pushed.code, pushed.out + pushed.err).toBe(ExitCode.OK);
    expect(pushed.json).toMatchObject({ pushed: [{ hostId: "build01", ok: true, version: 4 }] });
    await writeFile(join(w.dir, "coordinator.pem.keyset.json"), formatTrustFile(legit));
    const again = await lk(["keys", "push", unsigned, "--root-key", rootFile, "--json"]);
    expect(again.code).toBe(ExitCode.ACTION_FAILED);
    expect(again.json).toMatchObject({ pushed: [{ hostId: "build01", ok: false, code: RejectReason.KEYSET_VERSION }] });
    expect(w.agent.trust.version).toBe(4);
  });

  it("keys root-rotate --push: the old and the new root sign; afterwards only the new root can rotate", async () => {
    const rootFile = join(w.dir, "root.key");
    const newRootFile = join(w.dir, "root-2.key");
    expect((await lk(["keys", "root-init", "--out", newRootFile])).code).toBe(ExitCode.OK);
    const rotated = await lk(["keys", "root-rotate", "--root-key", rootFile, "--new-root-key", newRootFile, "--push", "--json"]);
    expect(rotated.code, rotated.out + rotated.err).toBe(ExitCode.OK);
    expect(rotated.json).toMatchObject({ version: 5, oldRootKeyId: w.rootKey.keyId, pushed: [{ ok: true, version: 5 }] });
    expect(w.agent.trust.keys.set.rootKeys.map((r) => r.keyId)).toEqual([(rotated.json as { rootKeyId: string }).rootKeyId]);
    const withOld = await lk(["keys", "rotate", "--phase", "retire", "--root-key", rootFile, "--push", "--json"]);
    expect(withOld.code).toBe(ExitCode.INPUT);
    const withNew = await lk(["keys", "rotate", "--phase", "retire", "--root-key", newRootFile, "--push", "--json"]);
    expect(withNew.code, withNew.out + withNew.err).toBe(ExitCode.OK);
    expect(w.agent.trust.version).toBe(6);
  });
});
