import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AUDIT_GENESIS_HASH, AuditLog, auditRecordHash, verifyAuditChain, type AuditRecord } from "./audit.js";
import { canonicalJson } from "./canonical-json.js";
import { FakeClock } from "./clock.js";
import { AuditError } from "./errors.js";

const dir = mkdtempSync(join(tmpdir(), "lk-audit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(dir, `audit-${++n}.jsonl`);

describe("AuditLog", () => {
  it("chains records from the genesis hash", async () => {
    const path = fresh();
    const clock = new FakeClock(1000);
    const log = await AuditLog.open(path, { clock });
    const a = await log.append({ source: "coordinator", action: "create", phase: "planned", laneId: "l1" });
    clock.advance(5);
    const b = await log.append({ source: "coordinator", action: "create", phase: "started", laneId: "l1" });
    await log.close();
    expect(a.seq).toBe(1);
    expect(a.prevHash).toBe(AUDIT_GENESIS_HASH);
    expect(b.prevHash).toBe(a.hash);
    expect(b.at).toBe(1005);
    const { hash, ...rest } = b;
    expect(auditRecordHash(rest)).toBe(hash);
    const text = readFileSync(path, "utf8");
    expect(text.split("\n")).toHaveLength(3);
    expect(text.split("\n")[0]).toBe(canonicalJson(a));
    expect(verifyAuditChain(text)).toEqual({ ok: true, count: 2, lastHash: b.hash });
  });

  it("serializes concurrent appends in call order", async () => {
    const path = fresh();
    const log = await AuditLog.open(path);
    const records = await Promise.all(
      Array.from({ length: 50 }, (_, i) => log.append({ source: "agent:h", action: "restart", phase: "succeeded", message: `m${i}` })),
    );
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(records.map((r) => r.message)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    expect((await log.tail(3)).map((r) => r.seq)).toEqual([48, 49, 50]);
    await log.close();
    expect(verifyAuditChain(readFileSync(path, "utf8"))).toMatchObject({ ok: true, count: 50 });
  });

  it("continues the chain after reopening", async () => {
    const path = fresh();
    const first = await AuditLog.open(path);
    await first.append({ source: "s", action: "a", phase: "planned" });
    await first.close();
    const again = await AuditLog.open(path);
    expect(again.seq).toBe(1);
    const r = await again.append({ source: "s", action: "a", phase: "succeeded" });
    await again.close();
    expect(r.seq).toBe(2);
    expect(verifyAuditChain(readFileSync(path, "utf8"))).toMatchObject({ ok: true, count: 2 });
  });

  it("refuses to open a tampered log, naming the line", async () => {
    const path = fresh();
    const log = await AuditLog.open(path);
    for (const phase of ["planned", "started", "succeeded"] as const) await log.append({ source: "s", action: "remove", phase });
    await log.close();
    const lines = readFileSync(path, "utf8").split("\n");
    lines[1] = lines[1]!.replace('"started"', '"failed"');
    writeFileSync(path, lines.join("\n"));
    await expect(AuditLog.open(path)).rejects.toThrow(AuditError);
    await expect(AuditLog.open(path)).rejects.toThrow(/line 2 \(seq 2\)/);
  });

  it("redacts secret-named fields in details", async () => {
    const log = await AuditLog.open(fresh());
    const r = await log.append({
      source: "coordinator",
      action: "create",
      phase: "started",
      details: { token: "AAAA-secret", nested: { jitConfig: "eyJ...", ok: 1 }, list: [{ password: "p" }] },
    });
    await log.close();
    expect(r.details).toEqual({ token: "[redacted]", nested: { jitConfig: "[redacted]", ok: 1 }, list: [{ password: "[redacted]" }] });
    expect(JSON.stringify(r)).not.toContain("AAAA-secret");
  });

  it("refuses records that are not JSON-representable or too large, without breaking the chain", async () => {
    const path = fresh();
    const log = await AuditLog.open(path);
    await expect(log.append({ source: "s", action: "a", phase: "planned", details: { n: Number.NaN } })).rejects.toThrow(TypeError);
    await expect(log.append({ source: "s", action: "a", phase: "planned", message: "x".repeat(70_000) })).rejects.toThrow(AuditError);
    const r = await log.append({ source: "s", action: "a", phase: "planned" });
    expect(r.seq).toBe(1);
    await log.close();
    await expect(log.append({ source: "s", action: "a", phase: "planned" })).rejects.toThrow(/closed/);
  });
});

describe("verifyAuditChain", () => {
  function chain(k: number): { text: string; records: AuditRecord[] } {
    let prevHash = AUDIT_GENESIS_HASH;
    const records: AuditRecord[] = [];
    for (let i = 1; i <= k; i++) {
      const base = { source: "s", action: "a", phase: "succeeded" as const, seq: i, at: i, prevHash };
      const rec = { ...base, hash: auditRecordHash(base) };
      records.push(rec);
      prevHash = rec.hash;
    }
    return { text: records.map((r) => `${canonicalJson(r)}\n`).join(""), records };
  }

  it("accepts an empty log", () => {
    expect(verifyAuditChain("")).toEqual({ ok: true, count: 0, lastHash: AUDIT_GENESIS_HASH });
  });

  it("names the first broken record for each kind of tampering", () => {
    const { text, records } = chain(4);
    const lines = text.split("\n").slice(0, 4);
    const join = (ls: string[]): string => `${ls.join("\n")}\n`;

    const edited = [...lines];
    edited[2] = edited[2]!.replace('"action":"a"', '"action":"b"');
    expect(verifyAuditChain(join(edited))).toEqual({ ok: false, count: 2, firstBroken: { line: 3, seq: 3, why: expect.stringContaining("edited") } });

    const deleted = [lines[0]!, lines[2]!, lines[3]!];
    expect(verifyAuditChain(join(deleted))).toMatchObject({ ok: false, count: 1, firstBroken: { line: 2, seq: 3 } });

    const swapped = [lines[0]!, lines[2]!, lines[1]!, lines[3]!];
    expect(verifyAuditChain(join(swapped))).toMatchObject({ ok: false, firstBroken: { line: 2 } });

    const truncatedTail = text.slice(0, -10);
    expect(verifyAuditChain(truncatedTail)).toMatchObject({ ok: false, count: 3, firstBroken: { line: 4, why: expect.stringContaining("torn") } });

    const noNewline = text.slice(0, -1);
    expect(verifyAuditChain(noNewline)).toMatchObject({ ok: false, count: 3, firstBroken: { line: 4, seq: 4 } });

    const garbage = join([lines[0]!, "{not json", lines[1]!]);
    expect(verifyAuditChain(garbage)).toMatchObject({ ok: false, count: 1, firstBroken: { line: 2, seq: null, why: "not valid JSON" } });

    const rehashed = { ...records[1]!, action: "evil" };
    const { hash: _h, ...rest } = rehashed;
    const forged = { ...rest, hash: auditRecordHash(rest) };
    const forgedLines = [...lines];
    forgedLines[1] = canonicalJson(forged);
    // Rehashing one record is not enough: the next record's prevHash no longer matches.
    expect(verifyAuditChain(join(forgedLines))).toMatchObject({ ok: false, count: 2, firstBroken: { line: 3, seq: 3, why: expect.stringContaining("prevHash") } });

    const badPhase = [...lines];
    badPhase[0] = badPhase[0]!.replace('"phase":"succeeded"', '"phase":"done"');
    expect(verifyAuditChain(join(badPhase))).toMatchObject({ ok: false, count: 0, firstBroken: { line: 1, seq: 1, why: "phase is unknown" } });
  });
});
