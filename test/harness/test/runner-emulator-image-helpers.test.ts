import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LauncherError } from "../src/launcher-error.js";
import { parseBuildOutput, runnerEmulatorDir, runnerImageBuildScript } from "../src/runner-image.js";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("runner image helpers", () => {
  it("point at the runner distribution and the build script", () => {
    for (const f of ["config.sh", "run.sh", "env.sh", "run-helper.sh.template", "bin/Runner.Listener", "bin/Runner.Worker", "bin/runsvc.sh"]) {
      const p = join(runnerEmulatorDir, f);
      expect(existsSync(p), p).toBe(true);
      expect(statSync(p).mode & 0o111, `${p} is executable`).not.toBe(0);
    }
    expect(existsSync(runnerImageBuildScript)).toBe(true);
  });

  it("parses the build script's key=value output", () => {
    const out = [
      "reference=localhost/lanekeeper/runner-emulator:0123456789abcdef",
      "id=93de5448041f",
      `digest=${DIGEST}`,
      `digestReference=localhost/lanekeeper/runner-emulator@${DIGEST}`,
      "built=false",
      "",
    ].join("\n");
    expect(parseBuildOutput(out)).toEqual({
      reference: "localhost/lanekeeper/runner-emulator:0123456789abcdef",
      id: "93de5448041f",
      digest: DIGEST,
      digestReference: `localhost/lanekeeper/runner-emulator@${DIGEST}`,
      built: false,
    });
  });

  it("rejects output without a digest or with a malformed one", () => {
    expect(() => parseBuildOutput("reference=x\nid=y\n")).toThrow(LauncherError);
    expect(() => parseBuildOutput(`reference=x\nid=y\ndigest=sha256:short\ndigestReference=x@sha256:short\nbuilt=true\n`)).toThrow(/malformed digest/);
  });
});
