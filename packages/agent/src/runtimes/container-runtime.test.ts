import { Readable } from "node:stream";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { tarSingleFile } from "../lanes/tar-file.js";
import type { LaneDirectories } from "../lanes/lane-directory.js";
import type { RuntimeLane } from "./lane-runtime.js";
import type { MarkerSigner } from "../lanes/lane-marker.js";
import { ContainerRuntime } from "./container-runtime.js";

/** An engine whose archive endpoint answers with `archive` (bytes, or an HTTP status to fail with). */
function engine(archive: Buffer | number): Docker {
  const container = {
    inspect: () => Promise.resolve({ Id: "0123456789abcdef", State: { Running: false } }),
    getArchive: () =>
      typeof archive === "number"
        ? Promise.reject(Object.assign(new Error(`(HTTP code ${archive})`), { statusCode: archive }))
        : Promise.resolve(Readable.from([archive])),
  };
  return { getContainer: () => container } as unknown as Docker;
}

function runtime(archive: Buffer | number): ContainerRuntime {
  return new ContainerRuntime({
    hostId: "build01",
    signer: {} as MarkerSigner,
    dirs: {} as LaneDirectories,
    docker: engine(archive),
    allowedImages: [],
  });
}

const lane = { record: { laneId: "c1" }, laneDir: "/nonexistent" } as unknown as RuntimeLane;

describe("container runtime: reading .runner", () => {
  it("parses the file the engine returns", async () => {
    const tar = tarSingleFile(".runner", Buffer.from('{"agentId":7,"agentName":"c1"}'), { mode: 0o644 });
    expect(await runtime(tar).runnerSettings(lane)).toMatchObject({ agentId: 7, agentName: "c1" });
  });

  it("reads a 404 as a lane whose runner is not configured", async () => {
    expect(await runtime(404).runnerSettings(lane)).toBeUndefined();
  });

  it("never reads an empty or cut answer (a container being torn down) as 'not configured': it throws, so health waits", async () => {
    await expect(runtime(Buffer.alloc(0)).runnerSettings(lane)).rejects.toThrow(/without a complete \.runner/);
    const tar = tarSingleFile(".runner", Buffer.from('{"agentId":7}'.padEnd(600, " ")), { mode: 0o644 });
    await expect(runtime(tar.subarray(0, 700)).runnerSettings(lane)).rejects.toThrow(/without a complete \.runner/);
  });
});
