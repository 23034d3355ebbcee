import { ACTION_KINDS } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { ALL_AGENT_ACTIONS } from "../src/fleet-constants.js";

describe("fleet constants", () => {
  it("the fleet's default allowlist is the protocol's own action list, not a copy that can fall behind", () => {
    expect(ALL_AGENT_ACTIONS).toBe(ACTION_KINDS);
  });
});
