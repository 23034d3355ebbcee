// The point of typed codes is that the compiler, not a reviewer, catches a misspelt code or a code without an
// exit code. This checks that with the real compiler on small snippets beside errors.ts.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const here = dirname(fileURLToPath(import.meta.url));

/** Type-check `source` as a file in this directory; returns the messages of its errors. */
function typeErrors(source: string): string[] {
  const file = join(here, "__typing-snippet__.ts");
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (f) => f === file || fileExists.call(host, f);
  host.readFile = (f) => (f === file ? source : readFile.call(host, f));
  host.getSourceFile = (f, v, ...rest) => (f === file ? ts.createSourceFile(f, source, v) : getSourceFile.call(host, f, v, ...rest));
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === file)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

// Each check runs the compiler over errors.ts and the lib files: seconds, more on a busy machine.
describe("typed error codes", { timeout: 90_000 }, () => {
  it("accept every spelling the unions allow", () => {
    const errors = typeErrors(`
      import { LanekeeperError, RejectReason, rejectReasonsExitingWith, type SharedErrorCode } from "./errors.js";
      type PkgCode = SharedErrorCode | "PKG_FAILED";
      export class PkgError extends LanekeeperError<PkgCode> {
        constructor() { super("PKG_FAILED", "x"); }
      }
      export const a = new LanekeeperError("CONFIG_INVALID", "x");
      export const b = new LanekeeperError(RejectReason.JOB_RUNNING, "x");
      export const c = new LanekeeperError("JOB_RUNNING", "x");
      export const table: Record<PkgCode, number> = {
        ...rejectReasonsExitingWith(8),
        CONFIG_INVALID: 3, AUDIT_FAILED: 6, KEY_INVALID: 9, INVALID_PATH: 3, INVALID_URL: 3, ENROLLMENT_INVALID: 6, USAGE: 2, INTERNAL: 1,
        PKG_FAILED: 10,
      };
    `);
    expect(errors).toEqual([]);
  });

  it("reject a misspelt code in a constructor and in a subclass", () => {
    const errors = typeErrors(`
      import { LanekeeperError, type SharedErrorCode } from "./errors.js";
      type PkgCode = SharedErrorCode | "PKG_FAILED";
      export class PkgError extends LanekeeperError<PkgCode> {
        constructor() { super("PKG_FIALED", "x"); }
      }
      export const a = new LanekeeperError("CONFIG_INVALD", "x");
    `);
    expect(errors).toHaveLength(2);
    expect(errors.join("\n")).toContain('"PKG_FIALED"');
    expect(errors.join("\n")).toContain('"CONFIG_INVALD"');
  });

  it("reject an exit-code table that forgets a code", () => {
    const errors = typeErrors(`
      import { rejectReasonsExitingWith, type SharedErrorCode } from "./errors.js";
      export const table: Record<SharedErrorCode | "PKG_FAILED", number> = {
        ...rejectReasonsExitingWith(8),
        CONFIG_INVALID: 3, AUDIT_FAILED: 6, KEY_INVALID: 9, INVALID_PATH: 3, INVALID_URL: 3, ENROLLMENT_INVALID: 6, USAGE: 2, INTERNAL: 1,
      };
    `);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("PKG_FAILED");
  });
});
