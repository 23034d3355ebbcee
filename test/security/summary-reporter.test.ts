// The security summary table (`npm run test:security`): one table per attack file, case / expected reason /
// result, and a total line that counts failures. The reporter leaves this file out of the table.
import { describe, expect, it } from "vitest";
import { renderSecuritySummary } from "./summary-reporter.js";

describe("security summary table", () => {
  it("groups cases by attack file with their expected reasons and outcomes, and counts failures", () => {
    const text = renderSecuritySummary([
      { file: "keyset-signed-by-online-key", rows: [{ name: "takeover is refused", expected: "KEYSET_NOT_ROOT_SIGNED", outcome: "pass" }] },
      { file: "keyset-version-rollback", rows: [{ name: "rollback", expected: "KEYSET_VERSION", outcome: "FAIL" }, { name: "skip", expected: "—", outcome: "skip" }] },
    ]);
    const lines = text.split("\n");
    expect(lines).toContain("keyset-signed-by-online-key  (1 case)");
    expect(lines).toContain("keyset-version-rollback  (2 cases, 1 FAILED)");
    expect(lines.find((l) => l.includes("takeover is refused"))).toMatch(/^ {2}takeover is refused\s+KEYSET_NOT_ROOT_SIGNED\s+pass$/);
    expect(lines.find((l) => l.startsWith("  rollback"))).toMatch(/KEYSET_VERSION\s+FAIL$/);
    expect(text).toContain("2 attack files, 3 cases: 1 passed, 1 failed, 1 skipped");
  });

  it("prints nothing when no security case ran", () => {
    expect(renderSecuritySummary([])).toBe("");
  });
});
