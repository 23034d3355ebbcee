import { generateSealingKey, generateSigningKey, makeEnrollmentBundle, type EnrollmentBundle } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { addHostToPolicyText, removeHostFromPolicyText } from "./policy-edit.js";

function bundle(hostId: string): EnrollmentBundle {
  const k = generateSigningKey();
  const s = generateSealingKey();
  return makeEnrollmentBundle({ hostId, identityPublicKey: k.publicKey, sealingPublicKey: s.publicKey, agentVersion: "0.0.0-test" });
}

const base = (hosts: string): string =>
  "# top comment\n" +
  "github:\n  auth: { tokenEnv: GITHUB_TOKEN } # inline\n" +
  "coordinator:\n  keyFile: /etc/lk/key\n  natsUrl: nats://127.0.0.1:4222\n" +
  hosts +
  "# trailing comment\n";

describe("policy edits", () => {
  it.each([
    ["no hosts key", ""],
    ["an empty hosts key", "hosts:\n"],
    ["a flow-style empty map", "hosts: {}\n"],
  ])("adds a host to a policy with %s, keeping comments", (_what, hosts) => {
    const b = bundle("build07");
    const out = addHostToPolicyText(base(hosts), { bundle: b, optIn: false, capacity: 3, enrolledAt: "2030-01-01T00:00:00.000Z" });
    expect(out.policy.hosts.build07).toMatchObject({ optIn: false, capacity: 3, enrolled: { identityKey: b.identityKey } });
    expect(out.text).toContain("# top comment");
    expect(out.text).toContain("# inline");
    expect(out.text).toContain("# trailing comment");
    expect(out.text).toContain(`identity key id ${b.identityKeyId}`);
    expect(out.text).not.toContain("{ build07");
  });

  it("adds a second host after the first and removes it again, leaving the rest as it was", () => {
    const first = addHostToPolicyText(base(""), { bundle: bundle("a1"), optIn: true, capacity: 1, enrolledAt: "x" });
    const second = addHostToPolicyText(first.text, { bundle: bundle("a2"), optIn: false, capacity: 1, enrolledAt: "y" });
    expect(Object.keys(second.policy.hosts)).toEqual(["a1", "a2"]);
    const back = removeHostFromPolicyText(second.text, second.policy, "a2");
    expect(back.text).toBe(first.text);
  });

  it("refuses a duplicate host and an unknown one", () => {
    const first = addHostToPolicyText(base(""), { bundle: bundle("a1"), optIn: true, capacity: 1, enrolledAt: "x" });
    expect(() => addHostToPolicyText(first.text, { bundle: bundle("a1"), optIn: true, capacity: 1, enrolledAt: "x" })).toThrow(
      expect.objectContaining({ code: "HOST_EXISTS" }),
    );
    expect(() => removeHostFromPolicyText(first.text, first.policy, "zz")).toThrow(expect.objectContaining({ code: "HOST_NOT_FOUND" }));
  });

  it("names the policy file when an edit would make it invalid", () => {
    const add = (file?: string): unknown => addHostToPolicyText(base(""), { bundle: bundle("a1"), optIn: true, capacity: -1, enrolledAt: "x" }, file);
    expect(add).toThrow(/^adding host a1 would make the policy invalid:\n {2}hosts\.a1\.capacity: /);
    expect(() => add("/srv/ops/lanekeeper.yaml")).toThrow(
      expect.objectContaining({ code: "ENROLLMENT_INVALID", message: expect.stringMatching(/^adding host a1 would make the policy \/srv\/ops\/lanekeeper\.yaml invalid:\n/) }),
    );
  });
});
