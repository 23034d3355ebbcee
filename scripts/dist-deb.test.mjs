// scripts/dist-deb.mjs on a small stand-in for `npm run dist` output (tiny "single executables" and a
// SHA256SUMS): two builds with the same SOURCE_DATE_EPOCH are the same bytes, the packages carry the executable
// at /usr/bin, the unit with the default paths filled in and the maintainer scripts, and SHA256SUMS gains the
// packages while keeping what was there. The packages themselves are installed in
// test/integration/installer-packages.test.ts.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { debianVersion, distDeb } from "./dist-deb.mjs";

const dirs = [];
const sha256 = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** A dist directory with stand-in executables for version 1.2.3 on x64 and the sums scripts/dist.mjs writes. */
function fakeDist() {
  const dir = mkdtempSync(join(tmpdir(), "lk-dist-deb-"));
  dirs.push(dir);
  const lines = [];
  for (const cli of ["lanekeeper", "lanekeeper-agent"]) {
    const name = `${cli}-1.2.3-linux-x64`;
    writeFileSync(join(dir, name), `#!/bin/sh\necho ${cli} 1.2.3\n`, { mode: 0o755 });
    lines.push(`${sha256(join(dir, name))}  ${name}`);
  }
  writeFileSync(join(dir, "SHA256SUMS"), `${lines.sort().join("\n")}\n`);
  return dir;
}

function build(dir) {
  const saved = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = "1700000000";
  try {
    return distDeb(dir);
  } finally {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  }
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("dist-deb", () => {
  it("builds both packages reproducibly and adds them to SHA256SUMS", () => {
    const a = fakeDist();
    const b = fakeDist();
    const names = build(a);
    expect(names).toEqual(["lanekeeper-agent_1.2.3_amd64.deb", "lanekeeper_1.2.3_amd64.deb"]);
    build(b);
    for (const n of names) expect(sha256(join(a, n))).toBe(sha256(join(b, n)));
    const sums = readFileSync(join(a, "SHA256SUMS"), "utf8").trim().split("\n");
    expect(sums.map((l) => l.split("  ")[1])).toEqual([
      "lanekeeper-1.2.3-linux-x64",
      "lanekeeper-agent-1.2.3-linux-x64",
      "lanekeeper-agent_1.2.3_amd64.deb",
      "lanekeeper_1.2.3_amd64.deb",
    ]);
    for (const line of sums) {
      const [hash, name] = line.split("  ");
      expect(sha256(join(a, name)), name).toBe(hash);
    }
  });

  it("puts the executable, the filled-in unit and the maintainer scripts in each package", () => {
    const dir = fakeDist();
    build(dir);
    const agent = join(dir, "lanekeeper-agent_1.2.3_amd64.deb");
    const listing = execFileSync("dpkg-deb", ["-c", agent], { encoding: "utf8", env: { ...process.env, TZ: "UTC" } });
    expect(listing).toMatch(/-rwxr-xr-x root\/root .* \.\/usr\/bin\/lanekeeper-agent\n/);
    expect(listing).toContain("./usr/lib/systemd/system/lanekeeper-agent.service");
    // Every entry stamped SOURCE_DATE_EPOCH (1700000000 = 2023-11-14 22:13 UTC), not the build's clock.
    const stamps = new Set([...listing.matchAll(/ (\d{4}-\d\d-\d\d \d\d:\d\d) /g)].map((m) => m[1]));
    expect([...stamps]).toEqual([new Date(1700000000_000).toISOString().slice(0, 16).replace("T", " ")]);
    const unit = execFileSync("sh", ["-c", `dpkg-deb --fsys-tarfile '${agent}' | tar -xOf - ./usr/lib/systemd/system/lanekeeper-agent.service`], { encoding: "utf8" });
    expect(unit).toContain("ExecStart=/usr/bin/lanekeeper-agent run --config /etc/lanekeeper/agent.yaml");
    expect(unit).not.toMatch(/@[A-Z_]+@/);
    const info = execFileSync("dpkg-deb", ["-I", agent], { encoding: "utf8" });
    expect(info).toMatch(/postinst/);
    expect(info).toMatch(/postrm/);
    expect(info).toMatch(/prerm/);
    expect(execFileSync("dpkg-deb", ["-f", agent, "Version"], { encoding: "utf8" }).trim()).toBe("1.2.3");
    const coordUnit = execFileSync("sh", ["-c", `dpkg-deb --fsys-tarfile '${join(dir, "lanekeeper_1.2.3_amd64.deb")}' | tar -xOf - ./usr/lib/systemd/system/lanekeeper.service`], { encoding: "utf8" });
    expect(coordUnit).toContain("ExecStart=/usr/bin/lanekeeper serve --policy /etc/lanekeeper-coordinator/lanekeeper.yaml");
    expect(coordUnit).toContain("User=lk-coordinator");
  });

  it("maps npm versions to Debian versions that sort the same way", () => {
    expect(debianVersion("1.2.3")).toBe("1.2.3");
    expect(debianVersion("1.2.3-rc.1")).toBe("1.2.3~rc.1");
    expect(() => debianVersion("latest")).toThrow(/not a version/);
  });
});
