import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { firstTarFile, tarSingleFile } from "./tar-file.js";

describe("tar-file", () => {
  it("builds an archive GNU tar extracts with the right content and mode", () => {
    const dir = mkdtempSync(join(tmpdir(), "lk-tar-"));
    writeFileSync(join(dir, "a.tar"), tarSingleFile(".lk-token", Buffer.from("value\n"), { mode: 0o600 }));
    execFileSync("tar", ["-xf", join(dir, "a.tar"), "-C", dir, "--no-same-owner"]);
    expect(readFileSync(join(dir, ".lk-token"), "utf8")).toBe("value\n");
    expect(statSync(join(dir, ".lk-token")).mode & 0o777).toBe(0o600);
  });

  it("reads the first file of an archive GNU tar made", () => {
    const dir = mkdtempSync(join(tmpdir(), "lk-tar-"));
    writeFileSync(join(dir, ".runner"), '{"agentId":7}');
    const tar = execFileSync("tar", ["-cf", "-", "-C", dir, ".runner"]);
    expect(firstTarFile(tar, 1024)?.toString()).toBe('{"agentId":7}');
    expect(firstTarFile(tar, 4)).toBeUndefined();
  });

  it("refuses entry names with a path", () => {
    expect(() => tarSingleFile("../x", Buffer.alloc(0), { mode: 0o600 })).toThrow(/plain file name/);
  });
});
