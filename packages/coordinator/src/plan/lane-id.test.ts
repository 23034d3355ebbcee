import { validateLaneId } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { newLaneId } from "./lane-id.js";

describe("newLaneId", () => {
  it("is deterministic, valid, and skips taken ids", () => {
    const a = newLaneId("acme/api", "linux-x64", new Set());
    expect(a).toMatch(/^linux-x64-[0-9a-f]{6}$/);
    expect(newLaneId("acme/api", "linux-x64", new Set())).toBe(a);
    const b = newLaneId("acme/api", "linux-x64", new Set([a]));
    expect(b).not.toBe(a);
    expect(b).toMatch(/^linux-x64-[0-9a-f]{6}$/);
  });

  it("differs between scopes with the same pool", () => {
    expect(newLaneId("acme/api", "p", new Set())).not.toBe(newLaneId("acme/web", "p", new Set()));
  });

  it("shortens long pool names to fit 63 characters", () => {
    const pool = "a".repeat(63);
    const id = newLaneId("org:acme", pool, new Set());
    expect(id.length).toBe(63);
    expect(validateLaneId(id)).toBe(id);
  });
});
