import { describe, expect, it } from "vitest";
import { EtagCache } from "./etag-cache.js";

describe("EtagCache", () => {
  it("evicts the least recently used entry beyond its bound", () => {
    const c = new EtagCache<number>(2);
    c.set("a", "W/\"1\"", 1);
    c.set("b", "W/\"2\"", 2);
    expect(c.get("a")?.value).toBe(1); // a is now the most recent
    c.set("c", "W/\"3\"", 3);
    expect(c.get("b")).toBeUndefined();
    expect(c.get("a")?.etag).toBe("W/\"1\"");
    expect(c.get("c")?.value).toBe(3);
    expect(c.size).toBe(2);
  });

  it("replaces an entry's ETag and value", () => {
    const c = new EtagCache<string>(4);
    c.set("a", "x", "old");
    c.set("a", "y", "new");
    expect(c.get("a")).toEqual({ etag: "y", value: "new" });
    c.delete("a");
    expect(c.get("a")).toBeUndefined();
  });
});
