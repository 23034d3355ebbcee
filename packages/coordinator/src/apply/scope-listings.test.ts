// ScopeListings: reads of one scope's runner listing that arrive within the batch window share one request, which
// starts after every one of them asked; a read after that request started waits for a request of its own.
import { describe, expect, it } from "vitest";
import type { RunnerList } from "../github/github-types.js";
import { ScopeListings } from "./scope-listings.js";

const list = (n: number): RunnerList => ({ scope: `call-${n}`, runners: [], notModified: false, complete: true, requests: 1 });

describe("ScopeListings", () => {
  it("one request per scope for the reads of a window, started after them; a later read gets a new one", async () => {
    const started: string[] = [];
    let n = 0;
    const gate: (() => void)[] = [];
    const l = new ScopeListings(
      {
        listRunners: (scope) => {
          started.push(scope);
          return Promise.resolve(list(++n));
        },
      },
      () => new Promise<void>((r) => gate.push(r)),
      250,
    );
    const a = [l.listing("acme/a"), l.listing("acme/a"), l.listing("acme/a")];
    const b = l.listing("acme/b");
    expect(started).toEqual([]);
    gate.splice(0).forEach((open) => open());
    const got = await Promise.all([...a, b]);
    expect(started).toEqual(["acme/a", "acme/b"]);
    expect(new Set(got.slice(0, 3)).size).toBe(1);
    expect(got[3]).not.toBe(got[0]);

    const later = l.listing("acme/a");
    gate.splice(0).forEach((open) => open());
    expect((await later).scope).toBe("call-3");
    expect(started).toEqual(["acme/a", "acme/b", "acme/a"]);
  });
});
