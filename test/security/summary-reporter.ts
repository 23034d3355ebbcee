/**
 * A vitest reporter for the security suite (`npm run test:security`): after the run, one table per attack file
 * (files are named for the attack) with each case, the rejection reason(s) it expects, and its outcome. The
 * expected reasons are the reason codes the case names or asserts: upper-case codes in its name
 * (`KEYSET_NOT_ROOT_SIGNED`) and `RejectReason.X` / `ResultRejectReason.X` references in its body (the lines from
 * the case's own location to the next case's, read from the test file). Prints nothing when no security file ran,
 * so it can sit in the global reporter list beside the default reporter.
 */
import { readFileSync } from "node:fs";
import { basename, relative } from "node:path";
import type { Reporter, TestCase, TestModule, Vitest } from "vitest/node";

const SECURITY_DIR = "test/security/";
const CODE_IN_NAME = /\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g;
const CODE_IN_BODY = /\b(?:ResultRejectReason|RejectReason|KeySetPushFailure)\.([A-Z][A-Z0-9_]*)\b|\b(?:code|reasonCode):\s*"([A-Z][A-Z0-9_]+)"/g;
/** This reporter's own test: not an attack. */
const OWN_TEST = "summary-reporter";
const MAX_CASE = 88;
const MAX_REASONS = 40;

/** One row of a file's table. */
export interface SummaryRow {
  name: string;
  expected: string;
  outcome: "pass" | "FAIL" | "skip";
}

function expectedReasons(test: TestCase, bodies: Map<number, string>): string {
  const codes = new Set<string>();
  for (const m of test.name.matchAll(CODE_IN_NAME)) codes.add(m[0]);
  const body = test.location === undefined ? undefined : bodies.get(test.location.line);
  if (body !== undefined) for (const m of body.matchAll(CODE_IN_BODY)) codes.add(m[1] ?? m[2] ?? "");
  codes.delete("");
  // An enum key and its prefixed value (DIGEST_MISMATCH, RESULT_DIGEST_MISMATCH) are one reason.
  const distinct = [...codes].filter((c) => ![...codes].some((d) => d !== c && d.endsWith(`_${c}`)));
  if (distinct.length === 0 && body !== undefined && /\bConfigError\b/.test(body)) return "ConfigError";
  const list = distinct.join(", ");
  if (list === "") return "—";
  return list.length > MAX_REASONS ? `${list.slice(0, MAX_REASONS - 1)}…` : list;
}

/** The source lines of each case, keyed by its first line (cases of one file, by location). */
function caseBodies(path: string, tests: readonly TestCase[]): Map<number, string> {
  const out = new Map<number, string>();
  let lines: string[];
  try {
    lines = readFileSync(path, "utf8").split("\n");
  } catch {
    return out;
  }
  const starts = [...new Set(tests.map((t) => t.location?.line).filter((l): l is number => l !== undefined))].sort((a, b) => a - b);
  starts.forEach((start, i) => {
    const end = starts[i + 1] ?? lines.length + 1;
    out.set(start, lines.slice(start - 1, end - 1).join("\n"));
  });
  return out;
}

function outcomeOf(test: TestCase): SummaryRow["outcome"] {
  const state = test.result().state;
  return state === "passed" ? "pass" : state === "failed" ? "FAIL" : "skip";
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Render the tables (exported for its own test). */
export function renderSecuritySummary(files: ReadonlyArray<{ file: string; rows: readonly SummaryRow[] }>): string {
  const all = files.flatMap((f) => f.rows);
  if (all.length === 0) return "";
  const nameW = Math.min(MAX_CASE, Math.max(4, ...all.map((r) => r.name.length)));
  const reasonW = Math.max("expected reason".length, ...all.map((r) => r.expected.length));
  const line = (a: string, b: string, c: string): string => `  ${a.padEnd(nameW)}  ${b.padEnd(reasonW)}  ${c}`;
  const out: string[] = ["", "Security suite: attack cases and outcomes", ""];
  for (const f of files) {
    const failed = f.rows.filter((r) => r.outcome === "FAIL").length;
    out.push(`${f.file}  (${f.rows.length} case${f.rows.length === 1 ? "" : "s"}${failed > 0 ? `, ${failed} FAILED` : ""})`);
    out.push(line("case", "expected reason", "result"));
    out.push(line("-".repeat(nameW), "-".repeat(reasonW), "------"));
    for (const r of f.rows) out.push(line(clip(r.name, nameW), r.expected, r.outcome));
    out.push("");
  }
  const passed = all.filter((r) => r.outcome === "pass").length;
  const failed = all.filter((r) => r.outcome === "FAIL").length;
  const skipped = all.length - passed - failed;
  out.push(`${files.length} attack files, ${all.length} cases: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`);
  return `${out.join("\n")}\n`;
}

/** The reporter; vitest.config.ts lists an instance beside the default reporter. */
export class SecuritySummaryReporter implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const root = this.vitest?.config.root ?? process.cwd();
    const files = testModules
      .map((m) => ({ m, rel: relative(root, m.moduleId) }))
      .filter(({ rel }) => rel.startsWith(SECURITY_DIR) && basename(rel, ".test.ts") !== OWN_TEST)
      .sort((a, b) => a.rel.localeCompare(b.rel))
      .map(({ m, rel }) => {
        const tests = [...m.children.allTests()];
        const bodies = caseBodies(m.moduleId, tests);
        const rows = tests.map((t): SummaryRow => ({ name: t.fullName, expected: expectedReasons(t, bodies), outcome: outcomeOf(t) }));
        return { file: basename(rel, ".test.ts"), rows };
      });
    const text = renderSecuritySummary(files);
    if (text !== "") (this.vitest?.logger ?? console).log(text);
  }
}
