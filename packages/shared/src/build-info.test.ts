import { afterEach, describe, expect, it, vi } from "vitest";
import { buildInfo, buildVersion, formatBuildInfo, GIT_COMMIT_TIMEOUT_MS, type CheckoutProbe } from "./build-info.js";

const globals = globalThis as { __LANEKEEPER_VERSION__?: string; __LANEKEEPER_COMMIT__?: string };

function probe(over: Partial<CheckoutProbe> = {}): CheckoutProbe & { run: ReturnType<typeof vi.fn> } {
  const run = vi.fn(() => ({ status: 0, stdout: "abc1234\n" }));
  return {
    packageDir: "/opt/lk/packages/agent/",
    readFile: (path: string) => {
      if (path !== "/opt/lk/packages/agent/package.json") throw new Error(`unexpected read of ${path}`);
      return JSON.stringify({ name: "@lanekeeper/agent", version: "0.4.2" });
    },
    run,
    ...over,
  } as CheckoutProbe & { run: ReturnType<typeof vi.fn> };
}

afterEach(() => {
  delete globals.__LANEKEEPER_VERSION__;
  delete globals.__LANEKEEPER_COMMIT__;
});

describe("buildInfo from a checkout (no bundler defines)", () => {
  it("reads package.json and runs git rev-parse --short HEAD in the package directory, with a timeout", () => {
    const p = probe();
    expect(buildInfo(p)).toEqual({ version: "0.4.2", commit: "abc1234" });
    expect(p.run).toHaveBeenCalledWith("git", ["rev-parse", "--short", "HEAD"], { cwd: "/opt/lk/packages/agent/", timeout: GIT_COMMIT_TIMEOUT_MS });
  });

  it("buildVersion starts no process (inventories report the version on every snapshot)", () => {
    const p = probe();
    expect(buildVersion(p)).toBe("0.4.2");
    expect(p.run).not.toHaveBeenCalled();
  });

  it("is unknown when git fails, times out or prints something that is not a commit", () => {
    expect(buildInfo(probe({ run: () => ({ status: 128, stdout: "" }) })).commit).toBe("unknown");
    expect(buildInfo(probe({ run: () => ({ status: null, stdout: null, error: new Error("ETIMEDOUT") }) })).commit).toBe("unknown");
    expect(buildInfo(probe({ run: () => ({ status: 0, stdout: "fatal: not a git repository\n" }) })).commit).toBe("unknown");
    expect(
      buildInfo(
        probe({
          run: () => {
            throw new Error("ENOENT");
          },
        }),
      ).commit,
    ).toBe("unknown");
  });

  it("is unknown when package.json is missing or has no version", () => {
    const missing = probe({
      readFile: () => {
        throw new Error("ENOENT");
      },
    });
    expect(buildInfo(missing).version).toBe("unknown");
    expect(buildVersion(probe({ readFile: () => "{}" }))).toBe("unknown");
  });
});

describe("buildInfo in a release bundle (esbuild define)", () => {
  it("uses the defined version and commit and reads nothing", () => {
    globals.__LANEKEEPER_VERSION__ = "1.2.3";
    globals.__LANEKEEPER_COMMIT__ = "feedbee";
    const p = probe({
      readFile: () => {
        throw new Error("must not read");
      },
    });
    expect(buildInfo(p)).toEqual({ version: "1.2.3", commit: "feedbee" });
    expect(p.run).not.toHaveBeenCalled();
  });

  it("a bundle that defines only the version still finds the commit in a checkout", () => {
    globals.__LANEKEEPER_VERSION__ = "1.2.3";
    expect(buildInfo(probe())).toEqual({ version: "1.2.3", commit: "abc1234" });
  });
});

describe("formatBuildInfo", () => {
  it("is the --version line", () => {
    expect(formatBuildInfo("lanekeeper", { version: "0.1.0", commit: "abc1234" })).toBe("lanekeeper 0.1.0 (commit abc1234)");
  });
});
