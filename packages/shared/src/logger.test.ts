import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "./canonical-json.js";
import { childLogger, createLogger } from "./logger.js";
import { isSecretFieldName, redactSecrets } from "./redact.js";

function capture(): { stream: Writable; raw: () => string[]; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const raw = (): string[] => chunks.join("").split("\n").filter(Boolean);
  return { stream, raw, lines: () => raw().map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** How often `"key":` occurs in a raw line (JSON.parse would silently keep the last of duplicates). */
const occurrences = (line: string, key: string): number => line.split(`"${key}":`).length - 1;

describe("logger", () => {
  it("binds component, host and lane", () => {
    const c = capture();
    const root = createLogger({ component: "agent", destination: c.stream });
    childLogger(root, { component: "intake", hostId: "build01", laneId: "l1" }).info({ digest: "ab" }, "accepted");
    const [line] = c.lines();
    expect(line).toMatchObject({ component: "intake", hostId: "build01", laneId: "l1", digest: "ab", msg: "accepted", level: 30 });
    expect(typeof line!.time).toBe("string");
  });

  it("writes each binding once: a child's component replaces the root's, nested children too", () => {
    const c = capture();
    const root = createLogger({ component: "lanekeeper-agent", destination: c.stream, level: "debug" });
    root.info("root line");
    const intake = childLogger(root, { component: "intake", hostId: "build01" });
    intake.info("child line");
    const lane = childLogger(intake, { component: "lanes", laneId: "l1" });
    lane.debug("grandchild line");
    const raw = c.raw();
    expect(raw).toHaveLength(3);
    for (const line of raw) {
      expect(occurrences(line, "component"), line).toBe(1);
      expect(occurrences(line, "hostId"), line).toBeLessThanOrEqual(1);
    }
    const [r, i, l] = c.lines();
    expect(r).toMatchObject({ component: "lanekeeper-agent", msg: "root line" });
    expect(r).not.toHaveProperty("hostId");
    expect(i).toMatchObject({ component: "intake", hostId: "build01", msg: "child line" });
    // The grandchild inherits hostId and the debug level, and replaces component.
    expect(l).toMatchObject({ component: "lanes", hostId: "build01", laneId: "l1", msg: "grandchild line", level: 20 });
  });

  it("a child keeps redaction and its parent's level", () => {
    const c = capture();
    const root = createLogger({ component: "coordinator", destination: c.stream, level: "warn" });
    const child = childLogger(root, { component: "dispatch" });
    child.info("dropped");
    child.warn({ nats: { password: "topsecret7" } }, "kept");
    expect(c.raw()).toHaveLength(1);
    expect(c.raw()[0]).not.toContain("topsecret7");
  });

  it("redacts secrets by path", () => {
    const c = capture();
    const log = createLogger({ component: "coordinator", destination: c.stream, level: "debug" });
    log.info(
      {
        token: "ghs_topsecret1",
        req: { headers: { authorization: "Bearer ghs_topsecret2" } },
        lane: { jitConfig: "eyJtopsecret3", spec: { registration: { ciphertext: "topsecret4" } } },
        nats: { password: "topsecret5" },
        a: { b: { c: { privateKey: "topsecret6" } } },
      },
      "x",
    );
    const text = JSON.stringify(c.lines());
    for (let i = 1; i <= 6; i++) expect(text).not.toContain(`topsecret${i}`);
    expect(text).toContain("[redacted]");
  });
});

describe("redaction and canonical JSON", () => {
  it("knows secret names in several spellings", () => {
    for (const k of ["token", "Token", "jit_config", "encodedJitConfig", "private_key", "Authorization"]) expect(isSecretFieldName(k)).toBe(true);
    for (const k of ["laneId", "message", "tokens_used"]) expect(isSecretFieldName(k)).toBe(false);
    expect(redactSecrets({ a: [{ token: "x" }], b: Buffer.from("k") })).toEqual({ a: [{ token: "[redacted]" }], b: "[redacted]" });
  });

  it("sorts keys at every level and refuses what JSON cannot hold", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, "x", null], c: true }, u: undefined })).toBe('{"a":{"c":true,"d":[1,"x",null]},"b":1}');
    expect(canonicalJson("é\n")).toBe('"é\\n"');
    expect(() => canonicalJson({ n: Infinity })).toThrow(TypeError);
    expect(() => canonicalJson([undefined])).toThrow(TypeError);
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(TypeError);
    expect(() => canonicalJson(1n)).toThrow(TypeError);
  });
});
