// security-cases group 14 (a stolen online coordinator key), at the real intake: a create for an allowed scope
// whose runner URL points anywhere but the agent's pinned GitHub origin plus that scope's exact path is refused
// with GITHUB_ORIGIN_NOT_ALLOWED, before any runtime call, for systemd and container lanes alike. Without the pin
// the runner would register with (and hand its registration token to) the attacker's server.
import { Backend, parseAgentConfig, RejectReason, ResultStatus } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { intakeControlOf } from "../../packages/agent/src/intake/intake-policy.js";
import { IMAGE, makeIntake, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
});
afterEach(async () => {
  await fx.close();
});

const ATTACKS: [string, string][] = [
  ["another host", "https://evil.example/acme/api"],
  ["a look-alike host", "https://github.com.evil.example/acme/api"],
  ["a host case variant", "https://GitHub.com/acme/api"],
  ["plain http to the right host", "http://github.com/acme/api"],
  ["plain http to any host", "http://10.0.0.66/acme/api"],
  ["another scheme", "ftp://github.com/acme/api"],
  ["another port", "https://github.com:8443/acme/api"],
  ["an explicit default port", "https://github.com:443/acme/api"],
  ["userinfo", "https://user:pw@github.com/acme/api"],
  ["userinfo naming the real host", "https://github.com@evil.example/acme/api"],
  ["userinfo without password", "https://x@github.com/acme/api"],
  ["a path outside the scope", "https://github.com/acme/other"],
  ["another owner's repo", "https://github.com/evil/api"],
  ["the scope under a prefix", "https://github.com/evil/acme/api"],
  ["an org path for a repo scope", "https://github.com/acme"],
  ["path traversal out of the scope", "https://github.com/acme/api/../../evil/api"],
  ["path traversal into the scope", "https://github.com/evil/../acme/api"],
  ["a percent-encoded traversal", "https://github.com/evil/%2e%2e/acme/api"],
  ["a percent-encoded scope", "https://github.com/%61cme/api"],
  ["a backslash", "https://github.com\\evil.example/acme/api"],
  ["a trailing slash", "https://github.com/acme/api/"],
  ["a trailing path", "https://github.com/acme/api/x"],
  ["a query", "https://github.com/acme/api?next=https://evil.example"],
  ["an empty query", "https://github.com/acme/api?"],
  ["a fragment", "https://github.com/acme/api#x"],
  ["trailing whitespace", "https://github.com/acme/api "],
  ["a trailing newline", "https://github.com/acme/api\n"],
  ["a trailing NUL", "https://github.com/acme/api\u0000"],
  ["a trailing argument", "https://github.com/acme/api --replace"],
  ["an empty URL", ""],
  ["not a URL", "github.com/acme/api"],
];

/** Refused with GITHUB_ORIGIN_NOT_ALLOWED, with no runtime call at all (not even an inspect). */
async function expectRefused(bytes: Uint8Array): Promise<string> {
  const before = { calls: fx.executor.calls.length, executed: fx.executor.executeCalls.length };
  const { result } = await fx.send(bytes);
  expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: RejectReason.GITHUB_ORIGIN_NOT_ALLOWED });
  expect(fx.executor.calls.slice(before.calls)).toEqual([]);
  expect(fx.executor.executeCalls.slice(before.executed)).toEqual([]);
  return result.message;
}

describe("a create whose runner URL names another server", () => {
  it("accepts the pinned origin plus the scope's exact path", async () => {
    expect((await fx.send(fx.create("lane-1").bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });

  it.each(ATTACKS)("systemd lane: %s is refused", async (_name, githubUrl) => {
    await expectRefused(fx.create("lane-1", { githubUrl }).bytes);
  });

  it.each(ATTACKS)("container lane: %s is refused", async (_name, githubUrl) => {
    await expectRefused(fx.create("lane-1", { githubUrl, backend: Backend.BACKEND_CONTAINER, image: IMAGE, runnerVersion: "" }).bytes);
  });

  it("an organization scope: only <origin>/<org>", async () => {
    fx.control = { ...fx.control, scopes: ["org:acme"] };
    const org = { scope: "org:acme", runnerGroup: "Default" };
    expect((await fx.send(fx.create("lane-1", { ...org, githubUrl: "https://github.com/acme" }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    for (const githubUrl of ["https://github.com/acme/api", "https://github.com/evil", "https://evil.example/acme", "https://github.com/acme/"]) {
      await expectRefused(fx.create("lane-2", { ...org, githubUrl }).bytes);
    }
  });

  it("says which part is wrong, reason first", async () => {
    expect(await expectRefused(fx.create("lane-1", { githubUrl: "https://evil.example/acme/api" }).bytes)).toMatch(/^runner URL refused: its origin https:\/\/evil\.example is not in github\.origins/);
    expect(await expectRefused(fx.create("lane-1", { githubUrl: "http://github.com/acme/api" }).bytes)).toContain("its scheme http is not allowed");
    expect(await expectRefused(fx.create("lane-1", { githubUrl: "https://github.com:8443/acme/api" }).bytes)).toContain("its port");
    expect(await expectRefused(fx.create("lane-1", { githubUrl: "https://u:p@github.com/acme/api" }).bytes)).toContain("credentials");
    expect(await expectRefused(fx.create("lane-1", { githubUrl: "https://github.com/acme/other" }).bytes)).toContain("its path must be exactly /acme/api");
  });

  it("an empty origin list allows no create at all", async () => {
    fx.control = { ...fx.control, githubOrigins: [] };
    await expectRefused(fx.create("lane-1").bytes);
  });

  it("a GHES origin replaces github.com, from agent.yaml", async () => {
    const config = parseAgentConfig("hostId: build01\nnats: { url: nats://127.0.0.1:4222 }\ngithub:\n  origins: [https://ghes.example.com]\n");
    fx.control = { ...fx.control, githubOrigins: intakeControlOf(config).githubOrigins };
    expect((await fx.send(fx.create("lane-1", { githubUrl: "https://ghes.example.com/acme/api" }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    await expectRefused(fx.create("lane-2", { githubUrl: "https://github.com/acme/api" }).bytes);
  });

  it("plain http only through github.allowInsecureHttpOrigins, and only that origin", async () => {
    const config = parseAgentConfig(
      "hostId: build01\nnats: { url: nats://127.0.0.1:4222 }\ngithub:\n  allowInsecureHttpOrigins: ['http://127.0.0.1:4000']\n",
    );
    fx.control = { ...fx.control, githubOrigins: intakeControlOf(config).githubOrigins };
    expect((await fx.send(fx.create("lane-1", { githubUrl: "http://127.0.0.1:4000/acme/api" }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    for (const githubUrl of ["http://127.0.0.1:4001/acme/api", "http://localhost:4000/acme/api", "https://127.0.0.1:4000/acme/api", "http://127.0.0.1:4000/evil/api"]) {
      await expectRefused(fx.create("lane-2", { githubUrl }).bytes);
    }
  });
});
