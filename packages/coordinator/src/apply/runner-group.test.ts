import { LaneMode, LaneSpec } from "@lanekeeper/shared";
import { makePolicy } from "@lanekeeper/testing";
import { describe, expect, it } from "vitest";
import { MemoryAuditTrail } from "../audit/coordinator-audit.js";
import type { RunnerGroup } from "../github/github-types.js";
import { RedactedSecret } from "../github/redacted-secret.js";
import { MemoryLaneStore } from "../observe/memory-lane-store.js";
import type { CreateAction } from "../plan/action.js";
import { ApplyEngine, type ApplyEngineOptions } from "./apply-engine.js";
import { pickRunnerGroup } from "./runner-group.js";

const group = (id: number, name: string, isDefault = false): RunnerGroup => ({ id, name, visibility: "all", default: isDefault });

describe("pickRunnerGroup", () => {
  const groups = [group(1, "Org Runners", true), group(7, "builders"), group(9, "GPU")];

  it("matches the policy's group name as GitHub does, ignoring case", () => {
    expect(pickRunnerGroup(groups, "builders")?.id).toBe(7);
    expect(pickRunnerGroup(groups, "Builders")?.id).toBe(7);
    expect(pickRunnerGroup(groups, "gpu")?.id).toBe(9);
  });

  it("without a name, takes the organization's default group even when it was renamed", () => {
    expect(pickRunnerGroup(groups, undefined)?.id).toBe(1);
    expect(pickRunnerGroup([group(3, "Default")], undefined)?.id).toBe(3);
  });

  it("finds nothing for a group the organization does not have", () => {
    expect(pickRunnerGroup(groups, "build")).toBeUndefined();
    expect(pickRunnerGroup([], undefined)).toBeUndefined();
  });
});

describe("an ephemeral organization lane's JIT config", () => {
  /** Runs only the create's mint step against a GitHub that has the groups; returns the group id asked for. */
  async function mint(runnerGroup: string | undefined): Promise<{ status: string; code: string | undefined; groupIds: number[] }> {
    const groupIds: number[] = [];
    const github = {
      listRunnerGroups: () => Promise.resolve([group(1, "Default", true), group(7, "builders")]),
      generateJitConfig: (_scope: string, req: { runnerGroupId: number }) => {
        groupIds.push(req.runnerGroupId);
        return Promise.resolve({ runner: { id: 42 }, encodedJitConfig: new RedactedSecret("jit") });
      },
    };
    const policy = makePolicy({ scopes: { "org:acme": { optIn: true, ...(runnerGroup === undefined ? {} : { runnerGroup }) } } });
    const action: CreateAction = {
      id: "create:eph-1",
      kind: "create",
      laneId: "eph-1",
      scope: "org:acme",
      pool: "eph",
      hostId: "build01",
      reason: { code: "SCALE_UP", message: "test" },
      guards: [],
      evidence: [],
      steps: ["mint-registration"],
      dependsOn: [],
      spec: LaneSpec.fromPartial({ laneId: "eph-1", scope: "org:acme", pool: "eph", mode: LaneMode.LANE_MODE_EPHEMERAL, runnerGroup: runnerGroup ?? "Default" }),
    };
    const o = { policy, github, store: new MemoryLaneStore([]), dispatcher: untouchable, inventory: untouchable, audit: new MemoryAuditTrail() } as unknown as ApplyEngineOptions;
    const report = await new ApplyEngine(o).run({ planId: "p", actions: [action] });
    const outcome = report.outcomes[0];
    return { status: outcome?.status ?? "", code: outcome?.code, groupIds };
  }

  it("registers in the policy's group however its name is cased, as config.sh does for persistent lanes", async () => {
    expect(await mint("Builders")).toEqual({ status: "succeeded", code: undefined, groupIds: [7] });
    expect(await mint(undefined)).toEqual({ status: "succeeded", code: undefined, groupIds: [1] });
  });

  it("fails before anything is registered when the organization has no such group", async () => {
    expect(await mint("gpu")).toEqual({ status: "failed", code: "RUNNER_GROUP_NOT_FOUND", groupIds: [] });
  });
});

/** Anything the mint step must not use. */
const untouchable = new Proxy({}, {
  get: (_t, p) => {
    throw new Error(`the engine used ${String(p)}`);
  },
});
