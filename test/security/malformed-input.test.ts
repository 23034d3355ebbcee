// security-cases.md group 8: malformed input. Random bytes, truncated varints, wrong wire types, unknown fields
// and duplicated fields, in the envelope and inside a correctly signed payload; for YAML config: duplicate keys,
// __proto__ and constructor keys, a BOM, trailing garbage and unknown keys. Each asserts the exact reason/path.
//
// Duplicated fields: protobuf decoders keep the last value. We decode exactly the verified bytes, once, and
// additionally require the canonical encoding, so a payload with a duplicated field is refused outright: the
// value acted on can never differ from what a lanekeeper coordinator encoded and signed.
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  IntentPayload,
  parseAgentConfig,
  parsePolicy,
  RejectReason,
  ResultStatus,
  signIntent,
  encodeIntent,
} from "@lanekeeper/shared";
import { HOST, intentFor, reasonOf, rewrapEnvelope, signRawIntent, verify, wire, world } from "./envelope-fixture.js";
import { makeIntake } from "./intake-fixture.js";

/** Deterministic PRNG (mulberry32) so a failure is reproducible. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("malformed envelopes", () => {
  const w = world();
  const good = signIntent(intentFor(w.coordinator), w.coordinator);

  it("rejects random bytes as ENVELOPE_MALFORMED, never as a version or any later-stage error", () => {
    const rand = prng(0x1a2b3c);
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(rand() * 300);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(rand() * 256);
      const r = reasonOf(() => verify(b, w));
      expect(r, `sample ${i}`).toBe(RejectReason.ENVELOPE_MALFORMED);
    }
  });

  it("rejects bytes that decode to a lone field as ENVELOPE_MALFORMED, not as a missing version", () => {
    // Each decodes cleanly to a SignedEnvelope with version 0 and almost nothing else.
    expect(reasonOf(() => verify(wire.string(2, w.coordinator.keyId), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
    expect(reasonOf(() => verify(wire.string(3, "payload"), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
    expect(reasonOf(() => verify(Buffer.concat([wire.string(2, w.coordinator.keyId), wire.string(3, "p")]), w))).toBe(
      RejectReason.ENVELOPE_MALFORMED,
    );
    // Still a version error when everything but the version is there (the downgrade case).
    const noVersion = rewrapEnvelope(good, { version: 0 });
    expect(reasonOf(() => verify(noVersion, w))).toBe(RejectReason.ENVELOPE_VERSION);
  });

  it("rejects mutated copies of a valid envelope, never accepting one", () => {
    const rand = prng(42);
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(good);
      const edits = 1 + Math.floor(rand() * 4);
      for (let e = 0; e < edits; e++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      const cut = rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
      if (Buffer.compare(cut, Buffer.from(good)) === 0) continue;
      const r = reasonOf(() => verify(cut, w));
      expect(r, `sample ${i}`).not.toBe("accepted");
    }
  });

  it("rejects an empty envelope as ENVELOPE_MALFORMED", () => {
    expect(reasonOf(() => verify(Buffer.alloc(0), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
    expect(reasonOf(() => verify(new Uint8Array(0), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
  });

  it("rejects a truncated varint", () => {
    expect(reasonOf(() => verify(Buffer.from([0x08, 0x80]), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
    expect(reasonOf(() => verify(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), w))).toBe(
      RejectReason.ENVELOPE_MALFORMED,
    );
    expect(reasonOf(() => verify(good.subarray(0, good.length - 1), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
  });

  it("rejects a length prefix running past the end", () => {
    expect(reasonOf(() => verify(Buffer.concat([Buffer.from(good), Buffer.from([0x1a, 0x7f, 0x00])]), w))).toBe(
      RejectReason.ENVELOPE_MALFORMED,
    );
  });

  it("rejects a field with the wrong wire type", () => {
    // Field 1 (version) as length-delimited: a lenient decoder skips it and sees no version.
    const wrong = Buffer.concat([wire.string(1, "\u0001"), Buffer.from(good).subarray(2)]);
    expect(reasonOf(() => verify(wrong, w))).toBe(RejectReason.ENVELOPE_VERSION);
    // Next to a correct version field it is refused as not canonical.
    expect(reasonOf(() => verify(Buffer.concat([Buffer.from(good), wire.string(1, "x")]), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
    // A group wire type (3, deprecated) for an unknown field.
    expect(reasonOf(() => verify(Buffer.concat([Buffer.from(good), wire.tag(9, 3), wire.tag(9, 4)]), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
  });

  it("rejects an unknown field in the envelope", () => {
    expect(reasonOf(() => verify(Buffer.concat([Buffer.from(good), wire.uint(15, 1)]), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
    expect(reasonOf(() => verify(Buffer.concat([Buffer.from(good), wire.string(99, "x")]), w))).toBe(RejectReason.ENVELOPE_MALFORMED);
  });

  it("rejects a duplicated envelope field", () => {
    const dupKeyId = Buffer.concat([Buffer.from(good), wire.string(2, w.coordinator.keyId)]);
    expect(reasonOf(() => verify(dupKeyId, w))).toBe(RejectReason.ENVELOPE_MALFORMED);
  });
});

describe("malformed payloads inside a valid signature", () => {
  const w = world();
  const intent = intentFor(w.coordinator);
  const payload = Buffer.from(encodeIntent(intent));
  const signed = (p: Uint8Array): RejectReason | "accepted" => reasonOf(() => verify(signRawIntent(p, w.coordinator), w));

  it("accepts the canonical payload", () => {
    expect(signed(payload)).toBe("accepted");
  });

  it("rejects random bytes", () => {
    const rand = prng(7);
    for (let i = 0; i < 500; i++) {
      const b = Buffer.alloc(1 + Math.floor(rand() * 200));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
      const r = signed(b);
      expect([RejectReason.PAYLOAD_MALFORMED, RejectReason.NO_ACTION]).toContain(r);
    }
  });

  it("rejects a truncated varint", () => {
    expect(signed(Buffer.concat([payload, Buffer.from([0x38, 0x80])]))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("rejects a field with the wrong wire type", () => {
    // sequence (field 7) as a length-delimited field.
    expect(signed(Buffer.concat([payload, wire.string(7, "x")]))).toBe(RejectReason.PAYLOAD_MALFORMED);
    // audience_host (field 3) as a varint.
    expect(signed(Buffer.concat([payload, wire.uint(3, 1)]))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("rejects an unexpected unknown field", () => {
    expect(signed(Buffer.concat([payload, wire.uint(19, 1)]))).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(signed(Buffer.concat([payload, wire.string(1000, "future field")]))).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("rejects a duplicated field instead of silently keeping the last value", () => {
    // The coordinator wrote audience build02; an extra later copy says build01. A lenient decoder would act on
    // build01, a value the coordinator never meant.
    const forOther = Buffer.from(encodeIntent({ ...intent, audienceHost: "build02" }));
    const smuggled = Buffer.concat([forOther, wire.string(3, HOST)]);
    expect(IntentPayload.decode(smuggled).audienceHost).toBe(HOST);
    expect(signed(smuggled)).toBe(RejectReason.PAYLOAD_MALFORMED);
    // Duplicated sequence: first 1, then a huge value.
    expect(signed(Buffer.concat([payload, wire.uint(7, 999_999)]))).toBe(RejectReason.PAYLOAD_MALFORMED);
    // Two actions of the oneof: decoders keep the last one.
    const twoActions = Buffer.concat([payload, wire.string(26, wire.string(1, "l1"))]);
    expect(IntentPayload.decode(twoActions).action?.$case).toBe("remove");
    expect(signed(twoActions)).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("rejects non-minimal varints, explicit defaults and invalid UTF-8", () => {
    // sequence = 1 written as 0x81 0x00 (two bytes) in place of 0x01.
    const seqAt = payload.indexOf(Buffer.from([0x38, 0x01]));
    expect(seqAt).toBeGreaterThan(0);
    const nonMinimal = Buffer.concat([payload.subarray(0, seqAt), Buffer.from([0x38, 0x81, 0x00]), payload.subarray(seqAt + 2)]);
    expect(IntentPayload.decode(nonMinimal).sequence).toBe(1);
    expect(signed(nonMinimal)).toBe(RejectReason.PAYLOAD_MALFORMED);
    expect(signed(Buffer.concat([payload, wire.string(10, "")]))).toBe(RejectReason.PAYLOAD_MALFORMED);
    const badUtf8 = Buffer.from(encodeIntent({ ...intent, operationId: "ab" }));
    const at = badUtf8.indexOf(Buffer.from("ab"));
    badUtf8[at] = 0xff;
    expect(signed(badUtf8)).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("rejects a sequence beyond JavaScript's safe integers", () => {
    const seqAt = payload.indexOf(Buffer.from([0x38, 0x01]));
    const big = Buffer.concat([payload.subarray(0, seqAt), wire.uint(7, 2n ** 60n), payload.subarray(seqAt + 2)]);
    expect(signed(big)).toBe(RejectReason.PAYLOAD_MALFORMED);
  });

  it("rejects a payload with no action", () => {
    expect(signed(encodeIntent({ ...intent, action: undefined }))).toBe(RejectReason.NO_ACTION);
  });
});

describe("malformed names at the real intake", () => {
  it.each([
    ["a NUL at the end", "2.330.0\u0000", "U+0000"],
    ["a newline", "2.330.0\n", "U+000A"],
    ["an escape sequence", "2.\u001b[31m330.0", "U+001B"],
    ["DEL", "2.330\u007f.0", "U+007F"],
    ["control characters past the length cap", `2.330.0${"\u0001".repeat(40)}`, "U+0001"],
  ])("a runner version with %s is INVALID_NAME naming the character, not a length error", async (_n, runnerVersion, named) => {
    const fx = await makeIntake();
    try {
      const { result } = await fx.send(fx.create("lane-1", { runnerVersion }).bytes);
      expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.INVALID_NAME });
      expect(result.message).toContain(named);
      expect(result.message).not.toMatch(/at most|characters \(has/);
      expect(fx.executor.calls).toEqual([]);
    } finally {
      await fx.close();
    }
  });

  it("an over-long runner version of digits only is INVALID_NAME with its length", async () => {
    const fx = await makeIntake();
    try {
      const { result } = await fx.send(fx.create("lane-1", { runnerVersion: `2.330.${"0".repeat(40)}` }).bytes);
      expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.INVALID_NAME });
      expect(result.message).toContain("at most 32 characters");
      expect(fx.executor.calls).toEqual([]);
    } finally {
      await fx.close();
    }
  });
});

describe("malformed config input", () => {
  const agent = "hostId: build01\nnats:\n  url: nats://127.0.0.1:4222\n";
  const policy = "github:\n  auth: { tokenEnv: GITHUB_TOKEN }\ncoordinator:\n  keyFile: /etc/lk/key\n  natsUrl: nats://127.0.0.1:4222\n";
  const issues = (parse: (t: string) => unknown, text: string): { path: string; message: string }[] => {
    try {
      parse(text);
    } catch (err) {
      if (err instanceof ConfigError) return [...err.issues];
      throw err;
    }
    throw new Error("expected a ConfigError");
  };

  it.each([
    ["agent config", parseAgentConfig, agent],
    ["policy", parsePolicy, policy],
  ] as const)("%s: accepts the base document", (_n, parse, base) => {
    expect(() => parse(base)).not.toThrow();
  });

  it.each([
    ["agent config", parseAgentConfig, agent, "hostId: other\n", "hostId"],
    ["policy", parsePolicy, policy, "github: {}\n", "github"],
  ] as const)("%s: rejects duplicate keys with their path", (_n, parse, base, dup, path) => {
    expect(issues(parse, base + dup)[0]).toMatchObject({ path, message: expect.stringContaining("duplicate key") });
  });

  it("rejects nested duplicate keys with the nested path", () => {
    expect(issues(parseAgentConfig, `${agent}control:\n  enabled: false\n  enabled: true\n`)[0]).toMatchObject({ path: "control.enabled" });
    expect(issues(parsePolicy, `${policy}hosts:\n  h1: {}\n  h1: {}\n`)[0]).toMatchObject({ path: "hosts.h1" });
  });

  it.each(["__proto__", "constructor", "prototype"])("rejects a %s key at any depth", (key) => {
    expect(issues(parseAgentConfig, `${agent}${key}: { enabled: true }\n`)[0]).toMatchObject({ path: key, message: expect.stringContaining("not allowed") });
    expect(issues(parseAgentConfig, `${agent}control:\n  ${key}: { enabled: true }\n`)[0]).toMatchObject({ path: `control.${key}` });
    expect(issues(parsePolicy, `${policy}pools:\n  ${key}: { backend: systemd }\n`)[0]).toMatchObject({ path: `pools.${key}` });
    expect(issues(parsePolicy, `${policy}lanes:\n  - { ${key}: 1 }\n`)[0]).toMatchObject({ path: `lanes[0].${key}` });
  });

  it("rejects a BOM", () => {
    expect(issues(parseAgentConfig, `\uFEFF${agent}`)).toEqual([{ path: "", message: "starts with a byte-order mark (BOM); save it as UTF-8 without BOM" }]);
    expect(issues(parsePolicy, `\uFEFF${policy}`)[0]!.message).toContain("BOM");
  });

  it.each([
    ["a second document", "---\nhostId: evil\n"],
    ["a document end marker and more", "...\nhostId: evil\n"],
    ["a stray closing bracket", "}\n"],
    ["a stray closing flow sequence", "]\n"],
    ["an unterminated quote", 'runAsUser: "abc\n'],
    ["binary junk", "\u0001\u0002\u0003\n"],
  ])("rejects trailing garbage: %s", (_name, tail) => {
    const found = issues(parseAgentConfig, agent + tail);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]!.path).toBe("");
  });

  it("rejects unknown keys with their paths", () => {
    // The issue names the key and where it stands: the agent prefix has three lines, so the stray key is line 4.
    expect(issues(parseAgentConfig, `${agent}hostID: x\n`)).toEqual([{ path: "hostID", message: "unknown key; remove it or fix its spelling", line: 4, column: 1 }]);
    expect(issues(parseAgentConfig, `${agent}nats2: {}\n`)[0]!.path).toBe("nats2");
    expect(issues(parseAgentConfig, `${agent}control: { enabled: false, allowAll: true }\n`)[0]!.path).toBe("control.allowAll");
    expect(issues(parsePolicy, `${policy}lanes:\n  - { scope: acme/api, pool: p, count: 1, hosts: [h], extra: 1 }\n`).map((i) => i.path)).toContain("lanes[0].extra");
  });

  it("rejects alias bombs (billion laughs)", () => {
    let doc = `${agent}a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n`;
    for (let i = 1; i < 9; i++) doc += `a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(", ")}]\n`;
    const found = issues(parseAgentConfig, doc);
    expect(found[0]).toMatchObject({ path: "", message: expect.stringContaining("alias") });
  });

  it("never throws anything but ConfigError on random text", () => {
    const rand = prng(99);
    const alphabet = "ab:-_ \n\t{}[]'\"#&*!|>%@`,?\\\u0000\uFEFF0123456789";
    for (let i = 0; i < 500; i++) {
      let t = "";
      const len = Math.floor(rand() * 80);
      for (let j = 0; j < len; j++) t += alphabet[Math.floor(rand() * alphabet.length)];
      for (const parse of [parseAgentConfig, parsePolicy]) {
        try {
          parse(t);
        } catch (err) {
          expect(err instanceof ConfigError, `sample ${i}: ${String(err)}`).toBe(true);
        }
      }
    }
  });
});
