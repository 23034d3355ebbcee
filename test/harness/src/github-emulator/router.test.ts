import { describe, expect, it } from "vitest";
import { Router } from "./router.js";

describe("Router", () => {
  it("prefers literal segments, decodes parameters, and tells a wrong method from a missing path", () => {
    const r = new Router<string>();
    r.add("GET", "/runners/{runner_id}", () => ({ status: 200, body: { p: "id" } }));
    r.add("GET", "/runners/downloads", () => ({ status: 200, body: { p: "downloads" } }));
    r.add("DELETE", "/runners/{runner_id}/labels/{name}", () => ({ status: 200 }));
    const d = r.match("GET", "/runners/downloads");
    expect(d.kind === "found" && d.route.template).toBe("/runners/downloads");
    const id = r.match("GET", "/runners/42");
    expect(id.kind === "found" && id.params).toEqual({ runner_id: "42" });
    const label = r.match("DELETE", "/runners/1/labels/a%20b");
    expect(label.kind === "found" && label.params.name).toBe("a b");
    expect(r.match("POST", "/runners/42").kind).toBe("method-not-allowed");
    expect(r.match("GET", "/nothing").kind).toBe("none");
    expect(r.match("GET", "/runners/%E0%A4%A").kind).toBe("none");
  });
});
