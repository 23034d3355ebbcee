// scripts/check-imports.mjs against small fixture trees: a clean tree passes, and each rule fails its own
// violation, so removing a rule (or weakening one, e.g. skipping type-only imports) turns a test red.
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const script = fileURLToPath(new URL("./check-imports.mjs", import.meta.url));
const baseConfig = fileURLToPath(new URL("../tsconfig.base.json", import.meta.url));
const dirs = [];

/** A clean tree with the repo's layout, plus `extra` files (path → text). */
function tree(extra = {}) {
  const root = mkdtempSync(join(tmpdir(), "lk-check-imports-"));
  dirs.push(root);
  cpSync(baseConfig, join(root, "tsconfig.base.json"));
  const files = {
    "packages/shared/src/index.ts": 'export { limit } from "./limits.js";\n',
    "packages/shared/src/limits.ts": "export const limit = 1;\n",
    // A shared test may read test fixtures.
    "packages/shared/src/limits.test.ts": 'import { vectors } from "../../../test/fixtures/vectors.js";\nexport const v = vectors;\n',
    "packages/agent/src/index.ts": 'import { limit } from "@lanekeeper/shared";\nexport { lane } from "./lane.js";\nexport const a = limit;\n',
    "packages/agent/src/lane.ts": 'import type { Kind } from "./kind.js";\nexport const lane = (k: Kind): Kind => k;\n',
    "packages/agent/src/kind.ts": 'export type Kind = "x";\n',
    "packages/coordinator/src/index.ts": 'import { limit } from "@lanekeeper/shared";\nexport const c = limit;\n',
    // Tests beside product code may use the test workspaces.
    "packages/coordinator/src/plan.test.ts": 'import { makePolicy } from "@lanekeeper/testing";\nimport { startFleet } from "@lanekeeper/harness";\nexport const t = [makePolicy, startFleet];\n',
    "test/fixtures/vectors.ts": "export const vectors = [];\n",
    "test/harness/src/index.ts": "export const startFleet = 1;\n",
    "test/support/src/index.ts": "export const makePolicy = 1;\n",
    ...extra,
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function check(root) {
  return new Promise((done) => {
    execFile(process.execPath, [script, "--root", root], { timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("check-imports", () => {
  it("passes a clean tree (type imports, shared test fixtures, test workspaces in tests)", async () => {
    const r = await check(tree());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("fails a runtime import cycle", async () => {
    const r = await check(tree({ "packages/agent/src/kind.ts": 'import { lane } from "./lane.js";\nexport type Kind = "x";\nexport const l = lane;\n' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/import cycle in packages\/agent\/src: (kind\.ts -> lane\.ts|lane\.ts -> kind\.ts)/);
  });

  it("fails a cycle made only of type imports", async () => {
    const r = await check(tree({ "packages/agent/src/kind.ts": 'import type { lane } from "./lane.js";\nexport type Kind = ReturnType<typeof lane>;\n' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/import cycle in packages\/agent\/src: (kind\.ts -> lane\.ts|lane\.ts -> kind\.ts)/);
  });

  it("fails a cycle in the test harness and in the testing workspace", async () => {
    const r = await check(
      tree({
        "test/harness/src/a.ts": 'import type { B } from "./b.js";\nexport type A = B;\n',
        "test/harness/src/b.ts": 'import type { A } from "./a.js";\nexport type B = A | 1;\n',
        "test/support/src/a.ts": 'import { b } from "./b.js";\nexport const a = () => b;\n',
        "test/support/src/b.ts": 'import { a } from "./a.js";\nexport const b = () => a;\n',
      }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("import cycle in test/harness/src");
    expect(r.stderr).toContain("import cycle in test/support/src");
  });

  it("fails a type-only cycle in the coordinator", async () => {
    const r = await check(
      tree({
        "packages/coordinator/src/a.ts": 'import type { B } from "./b.js";\nexport type A = B;\n',
        "packages/coordinator/src/b.ts": 'import type { A } from "./a.js";\nexport type B = A | 1;\n',
      }),
    );
    expect(r.stderr).toContain("import cycle in packages/coordinator/src");
    expect(r.code).toBe(1);
  });

  it("fails agent and coordinator importing each other", async () => {
    const r = await check(tree({ "packages/agent/src/bad.ts": 'export { c } from "../../coordinator/src/index.js";\n' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("packages/agent/src/bad.ts: forbidden import ../../coordinator/src/index.js");
  });

  it("fails a relative import out of packages/shared/src, from code and from a test", async () => {
    const r = await check(
      tree({
        "packages/shared/src/bad.ts": 'import { a } from "../../agent/src/index.js";\nexport const b = a;\n',
        "packages/shared/src/bad.test.ts": 'import { c } from "../../coordinator/src/index.js";\nexport const d = c;\n',
      }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("packages/shared/src/bad.ts: relative import ../../agent/src/index.js leaves packages/shared/src");
    expect(r.stderr).toContain("packages/shared/src/bad.test.ts: relative import ../../coordinator/src/index.js leaves packages/shared/src");
  });

  it("fails product code that imports test code: test/ by path, the harness, the testing workspace", async () => {
    const r = await check(
      tree({
        "packages/agent/src/a.ts": 'export { vectors } from "../../../test/fixtures/vectors.js";\n',
        "packages/coordinator/src/b.ts": 'import { startFleet } from "@lanekeeper/harness";\nexport const b = startFleet;\n',
        "packages/coordinator/src/c.ts": 'export const c = async () => import("@lanekeeper/testing");\n',
        "packages/shared/src/d.ts": 'import "@lanekeeper/testing";\n',
      }),
    );
    expect(r.code).toBe(1);
    for (const line of [
      "packages/agent/src/a.ts: product code imports test code ../../../test/fixtures/vectors.js",
      "packages/coordinator/src/b.ts: product code imports test code @lanekeeper/harness",
      "packages/coordinator/src/c.ts: product code imports test code @lanekeeper/testing",
      "packages/shared/src/d.ts: product code imports test code @lanekeeper/testing",
    ]) {
      expect(r.stderr).toContain(line);
    }
  });
});
