// security-cases.md group 3: audience. An intent executes only on the one host it names, arriving on that host's
// subject.
import { describe, expect, it } from "vitest";
import { RejectReason, signIntent } from "@lanekeeper/shared";
import { HOST, intentFor, reasonOf, signUnchecked, verify, world } from "./envelope-fixture.js";

describe("audience", () => {
  const w = world();
  const forAudience = (audienceHost: string): Uint8Array => signUnchecked(intentFor(w.coordinator, { audienceHost }), w.coordinator);

  it("accepts the exact host id", () => {
    expect(reasonOf(() => verify(forAudience(HOST), w))).toBe("accepted");
  });

  it.each([
    ["another host", "build02"],
    ["empty", ""],
    ["wildcard", "*"],
    ["case variant", "BUILD01"],
    ["mixed case", "Build01"],
    ["trailing space", "build01 "],
    ["leading space", " build01"],
    ["trailing NUL", "build01\u0000"],
    ["trailing newline", "build01\n"],
    ["prefix", "build0"],
    ["suffix", "build011"],
    ["full-width digits", "build０１"],
    ["list", "build01,build02"],
    ["glob", "build0?"],
  ])("rejects %s", (_name, audience) => {
    expect(reasonOf(() => verify(forAudience(audience), w))).toBe(RejectReason.AUDIENCE_MISMATCH);
  });

  it("rejects an intent for this host that arrived on another host's subject", () => {
    const bytes = signIntent(intentFor(w.coordinator), w.coordinator);
    expect(reasonOf(() => verify(bytes, w, { subjectHost: "build02" }))).toBe(RejectReason.SUBJECT_MISMATCH);
    expect(reasonOf(() => verify(bytes, w, { subjectHost: "" }))).toBe(RejectReason.SUBJECT_MISMATCH);
    expect(reasonOf(() => verify(bytes, w, { subjectHost: "*" }))).toBe(RejectReason.SUBJECT_MISMATCH);
    expect(reasonOf(() => verify(bytes, w, { subjectHost: "BUILD01" }))).toBe(RejectReason.SUBJECT_MISMATCH);
  });

  it("checks the audience before the subject", () => {
    expect(reasonOf(() => verify(forAudience("build02"), w, { subjectHost: "build02" }))).toBe(RejectReason.AUDIENCE_MISMATCH);
  });

  it("judges the audience against the agent's configured host id", () => {
    // The agent's own host id is what counts: an agent configured as build02 refuses build01's intent.
    const bytes = signIntent(intentFor(w.coordinator), w.coordinator);
    expect(reasonOf(() => verify(bytes, w, { hostId: "build02", subjectHost: "build02" }))).toBe(RejectReason.AUDIENCE_MISMATCH);
  });
});
