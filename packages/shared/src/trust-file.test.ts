import { describe, expect, it } from "vitest";
import { ConfigError } from "./errors.js";
import { KeyStatus } from "./gen/lanekeeper/v1/envelope.js";
import { generateSigningKey } from "./keys.js";
import { buildKeySet } from "./keyset.js";
import { formatTrustFile, parseTrustFile } from "./trust-file.js";

describe("trust file", () => {
  const a = generateSigningKey();
  const b = generateSigningKey();
  const root = generateSigningKey();
  const set = buildKeySet({ version: 2, issuedAtMs: 1000, members: [{ key: a }, { key: b, status: KeyStatus.KEY_STATUS_NEXT }], hwmFloor: 9, roots: [{ key: root }] });

  it("round-trips", () => {
    const text = formatTrustFile(set);
    expect(JSON.parse(text)).toMatchObject({ format: "lanekeeper.trust.v1", version: 2, keys: [{ status: "active" }, { status: "next" }], rootKeys: [{ keyId: root.keyId, status: "active" }] });
    expect(parseTrustFile(text)).toEqual(set);
  });

  it("refuses bad files with paths", () => {
    const doc = JSON.parse(formatTrustFile(set)) as Record<string, unknown>;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const bad = (mut: (d: any) => void): string[] => {
      const d = structuredClone(doc);
      mut(d);
      try {
        parseTrustFile(JSON.stringify(d));
      } catch (err) {
        return (err as ConfigError).issues.map((i) => i.path);
      }
      throw new Error("expected a ConfigError");
    };
    expect(bad((d) => { d.keys[0].status = "trusted"; })).toEqual(["keys[0].status"]);
    expect(bad((d) => { d.extra = 1; })).toEqual(["extra"]);
    expect(bad((d) => { d.keys[1].keyId = d.keys[0].keyId; })).toEqual(["keys"]);
    expect(bad((d) => { d.format = "other"; })).toEqual(["format"]);
    // The root key is pinned by the trust file: a file without one is refused, as is a root doubling as an intent key.
    expect(bad((d) => { delete d.rootKeys; })).toEqual(["rootKeys"]);
    expect(bad((d) => { d.rootKeys = []; })).toEqual(["rootKeys"]);
    expect(bad((d) => { d.rootKeys[0] = d.keys[0]; })).toEqual(["keys"]);
    expect(() => parseTrustFile('{"__proto__": {}}')).toThrow(ConfigError);
    expect(() => parseTrustFile("not json")).toThrow(/not valid JSON/);
  });

  it("names the file it was read from", () => {
    const file = "/etc/lanekeeper/trust.json";
    expect(() => parseTrustFile("not json", file)).toThrow(`trust file ${file} is invalid:`);
    const doc = JSON.parse(formatTrustFile(set)) as Record<string, unknown>;
    expect(() => parseTrustFile(JSON.stringify({ ...doc, extra: 1 }), file)).toThrow(`trust file ${file} is invalid:\n  extra: unknown key`);
    expect(() => parseTrustFile(JSON.stringify({ ...doc, rootKeys: doc.keys }), file)).toThrow(`trust file ${file} is invalid:\n  keys: `);
  });
});
