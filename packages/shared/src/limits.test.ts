// The size caps agree with the NATS configuration that carries the envelopes: every envelope an agent sends fits
// the agents' max_payload in the shipped example config and in the harness that the suites run against.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AGENT_NATS_MAX_PAYLOAD_BYTES, MAX_ENVELOPE_BYTES_BY_KIND, MAX_KEYSET_BYTES } from "./limits.js";

describe("envelope caps and NATS max_payload", () => {
  it("the agents' account limit in install/nats-server.example.conf is AGENT_NATS_MAX_PAYLOAD_BYTES", () => {
    const conf = readFileSync(new URL("../../../install/nats-server.example.conf", import.meta.url), "utf8");
    const agents = conf.slice(conf.indexOf("LANEKEEPER_AGENTS {"));
    const limit = /limits\s*\{\s*max_payload:\s*(\d+)\s*\}/.exec(agents);
    expect(limit, "LANEKEEPER_AGENTS limits { max_payload } in the example config").not.toBeNull();
    expect(Number(limit![1])).toBe(AGENT_NATS_MAX_PAYLOAD_BYTES);
  });

  it("what agents publish (results, inventories) fits under it; intents and key sets keep their 64 KiB", () => {
    expect(MAX_ENVELOPE_BYTES_BY_KIND.result).toBeLessThanOrEqual(AGENT_NATS_MAX_PAYLOAD_BYTES);
    expect(MAX_ENVELOPE_BYTES_BY_KIND.inventory).toBeLessThanOrEqual(AGENT_NATS_MAX_PAYLOAD_BYTES);
    expect(MAX_ENVELOPE_BYTES_BY_KIND.intent).toBe(64 * 1024);
    expect(MAX_KEYSET_BYTES).toBe(64 * 1024);
  });
});
