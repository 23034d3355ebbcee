// security-cases groups 7, 8, 10 and 14 for runner downloads, at the real intake: a create or upgrade whose
// RunnerDownload is malformed or oversized (sha256 not 64 lower-case hex, URL over the cap, size over the cap,
// a download on a container lane, an upgrade naming both or neither of version and image) is PAYLOAD_MALFORMED;
// one whose URL names anything but the agent's configured download origins (a stolen coordinator key pointing
// hosts at attacker code) is DOWNLOAD_ORIGIN_NOT_ALLOWED; an upgrade outside control.actions or to an image
// outside control.images is refused. All before any runtime call.
import {
  Backend,
  MAX_RUNNER_ARCHIVE_BYTES,
  MAX_URL_CHARS,
  parseAgentConfig,
  RejectReason,
  ResultStatus,
  type IntentAction,
  type RunnerDownload,
  type UpgradeLane,
} from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { intakeControlOf } from "../../packages/agent/src/intake/intake-policy.js";
import { IMAGE, makeIntake, openControl, type IntakeFixture } from "./intake-fixture.js";

let fx: IntakeFixture;
beforeEach(async () => {
  fx = await makeIntake();
  fx.control = openControl({ actions: [...openControl().actions, "upgrade"] });
});
afterEach(async () => {
  await fx.close();
});

const URL_OK = "https://github.com/actions/runner/releases/download/v2.330.0/actions-runner-linux-x64-2.330.0.tar.gz";
const SHA = "ab".repeat(32);
const download = (over: Partial<RunnerDownload> = {}): RunnerDownload => ({ url: URL_OK, sha256: SHA, sizeBytes: 1000, ...over });

/** A signed upgrade carrying `value` as is (field caps are bypassed so oversized fields reach the agent). */
function upgrade(value: Partial<UpgradeLane>): Uint8Array {
  const valid: IntentAction = { $case: "upgrade", value: { laneId: "lane-1", runnerVersion: "2.331.0", runnerDownload: undefined, image: "" } };
  const action: IntentAction = { $case: "upgrade", value: { laneId: "lane-1", runnerVersion: "2.331.0", runnerDownload: undefined, image: "", ...value } };
  return fx.intent(valid, { action }).bytes;
}

async function expectRefused(bytes: Uint8Array, reason: RejectReason): Promise<string> {
  const before = { calls: fx.executor.calls.length, executed: fx.executor.executeCalls.length };
  const { result } = await fx.send(bytes);
  expect(result).toMatchObject({ status: ResultStatus.RESULT_STATUS_REJECTED, reasonCode: reason });
  expect(fx.executor.calls.slice(before.calls)).toEqual([]);
  expect(fx.executor.executeCalls.slice(before.executed)).toEqual([]);
  return result.message;
}

const MALFORMED: [string, Partial<RunnerDownload>][] = [
  ["a 63-character sha256", { sha256: "a".repeat(63) }],
  ["a 65-character sha256", { sha256: "a".repeat(65) }],
  ["an upper-case sha256", { sha256: "AB".repeat(32) }],
  ["a non-hex sha256", { sha256: "g".repeat(64) }],
  ["an empty sha256", { sha256: "" }],
  ["a sha256 with a newline", { sha256: `${"a".repeat(63)}\n` }],
  ["an empty URL", { url: "" }],
  ["a URL over the cap", { url: `https://github.com/${"a".repeat(MAX_URL_CHARS)}` }],
  ["a size over the cap", { sizeBytes: MAX_RUNNER_ARCHIVE_BYTES + 1 }],
];

describe("malformed or oversized runner download fields", () => {
  it("a well-formed download on an allowed origin passes", async () => {
    expect((await fx.send(fx.create("lane-1", { runnerDownload: download() }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });

  it.each(MALFORMED)("create: %s is PAYLOAD_MALFORMED", async (_name, over) => {
    await expectRefused(fx.create("lane-1", { runnerDownload: download(over) }).bytes, RejectReason.PAYLOAD_MALFORMED);
  });

  it.each(MALFORMED)("upgrade: %s is PAYLOAD_MALFORMED", async (_name, over) => {
    await expectRefused(upgrade({ runnerDownload: download(over) }), RejectReason.PAYLOAD_MALFORMED);
  });

  it("a download on a container lane is PAYLOAD_MALFORMED", async () => {
    const spec = { backend: Backend.BACKEND_CONTAINER, image: IMAGE, runnerVersion: "", runnerDownload: download() };
    await expectRefused(fx.create("lane-1", spec).bytes, RejectReason.PAYLOAD_MALFORMED);
  });

  it("an upgrade names exactly one of version and image, and a download only with a version", async () => {
    await expectRefused(upgrade({ runnerVersion: "2.331.0", image: IMAGE }), RejectReason.PAYLOAD_MALFORMED);
    await expectRefused(upgrade({ runnerVersion: "", image: "" }), RejectReason.PAYLOAD_MALFORMED);
    await expectRefused(upgrade({ runnerVersion: "", image: IMAGE, runnerDownload: download() }), RejectReason.PAYLOAD_MALFORMED);
  });

  it("an upgrade's version and image go through the name validators", async () => {
    await expectRefused(upgrade({ runnerVersion: "../2.331.0" }), RejectReason.INVALID_NAME);
    await expectRefused(upgrade({ runnerVersion: `2.331.0${"0".repeat(40)}` }), RejectReason.INVALID_NAME);
    await expectRefused(upgrade({ runnerVersion: "", image: "ghcr.io/acme/runner:latest" }), RejectReason.INVALID_NAME);
    await expectRefused(upgrade({ laneId: "../lane-1" }), RejectReason.INVALID_NAME);
  });
});

const FOREIGN: [string, string][] = [
  ["another host", "https://evil.example/actions-runner-linux-x64-2.330.0.tar.gz"],
  ["a look-alike host", "https://github.com.evil.example/a.tar.gz"],
  ["plain http to the right host", "http://github.com/a.tar.gz"],
  ["another port", "https://github.com:8443/a.tar.gz"],
  ["an explicit default port", "https://github.com:443/a.tar.gz"],
  ["userinfo", "https://user:pw@github.com/a.tar.gz"],
  ["userinfo naming the real host", "https://github.com@evil.example/a.tar.gz"],
  ["a query", "https://github.com/a.tar.gz?x=1"],
  ["a fragment", "https://github.com/a.tar.gz#x"],
  ["a backslash", "https://github.com\\evil.example/a.tar.gz"],
  ["a file URL", "file:///etc/shadow"],
  ["a data URL", "data:application/gzip;base64,AAAA"],
  ["not a URL", "github.com/a.tar.gz"],
  ["a bare origin", "https://github.com"],
];

describe("a runner download from anywhere but the configured origins", () => {
  it.each(FOREIGN)("create: %s is refused", async (_name, url) => {
    await expectRefused(fx.create("lane-1", { runnerDownload: download({ url }) }).bytes, RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED);
  });

  it.each(FOREIGN)("upgrade: %s is refused", async (_name, url) => {
    await expectRefused(upgrade({ runnerDownload: download({ url }) }), RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED);
  });

  it("says why, reason first", async () => {
    const msg = await expectRefused(fx.create("lane-1", { runnerDownload: download({ url: "https://evil.example/a.tar.gz" }) }).bytes, RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED);
    expect(msg).toMatch(/^runner download refused: its origin https:\/\/evil\.example is not in runnerDownloads\.origins/);
  });

  it("the default origins are GitHub's release hosts; an http test origin only when configured", async () => {
    const defaults = parseAgentConfig("hostId: build01\nnats: { url: nats://127.0.0.1:4222 }\n");
    fx.control = { ...fx.control, downloadOrigins: intakeControlOf(defaults).downloadOrigins };
    const ok = "https://objects.githubusercontent.com/github-production-release-asset/a.tar.gz";
    expect((await fx.send(fx.create("lane-1", { runnerDownload: download({ url: ok }) }).bytes)).result.status).toBe(ResultStatus.RESULT_STATUS_OK);
    await expectRefused(fx.create("lane-2", { runnerDownload: download({ url: "http://127.0.0.1:4000/a.tar.gz" }) }).bytes, RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED);
    const test = parseAgentConfig("hostId: build01\nnats: { url: nats://127.0.0.1:4222 }\nrunnerDownloads:\n  allowInsecureHttpOrigins: ['http://127.0.0.1:4000']\n");
    fx.control = { ...fx.control, downloadOrigins: intakeControlOf(test).downloadOrigins };
    expect((await fx.send(fx.create("lane-2", { runnerDownload: download({ url: "http://127.0.0.1:4000/a.tar.gz" }) }).bytes)).result.status).toBe(
      ResultStatus.RESULT_STATUS_OK,
    );
    await expectRefused(fx.create("lane-3", { runnerDownload: download({ url: "http://127.0.0.1:4001/a.tar.gz" }) }).bytes, RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED);
  });

  it("an empty origin list allows no download at all", async () => {
    fx.control = { ...fx.control, downloadOrigins: [] };
    await expectRefused(fx.create("lane-1", { runnerDownload: download() }).bytes, RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED);
  });
});

describe("the upgrade allowlist", () => {
  it("an upgrade is refused unless control.actions names it", async () => {
    fx.control = openControl();
    await expectRefused(upgrade({}), RejectReason.NOT_ALLOWED_ACTION);
  });

  it("a container upgrade to an image outside control.images is refused", async () => {
    await expectRefused(upgrade({ runnerVersion: "", image: `ghcr.io/acme/runner@sha256:${"b".repeat(64)}` }), RejectReason.NOT_ALLOWED_IMAGE);
  });
});
