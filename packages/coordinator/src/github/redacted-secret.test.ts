import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { RedactedSecret } from "./redacted-secret.js";

describe("RedactedSecret", () => {
  it("hides the value from JSON, strings and inspect, and reveals it on request", () => {
    const s = new RedactedSecret("AABBCCDDEEFF");
    expect(JSON.stringify({ token: s })).toBe('{"token":"[REDACTED]"}');
    expect(`${String(s)}`).toBe("[REDACTED]");
    expect(inspect({ s })).not.toContain("AABBCC");
    expect(s.reveal()).toBe("AABBCCDDEEFF");
    expect(s.length).toBe(12);
  });
});
