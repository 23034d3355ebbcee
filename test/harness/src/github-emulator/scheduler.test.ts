import { describe, expect, it } from "vitest";
import { defaultGroup } from "./registry.js";
import { labelsSatisfy, pickRunner, scopeServes } from "./scheduler.js";
import type { JobRecord, RepoRecord, RunnerRecord } from "./state.js";

const repo: RepoRecord = { id: 1001, owner: "Acme", name: "API", runNumber: 0 };

function runner(id: number, scope: string, labels: string[], jobId: number | null = null): RunnerRecord {
  return {
    id,
    scope,
    name: `r${id}`,
    groupId: 1,
    labels: labels.map((name, i) => ({ id: i, name, type: "custom" as const })),
    ephemeral: false,
    os: "Linux",
    version: "2.336.0",
    credentialHash: "",
    workFolder: "_work",
    createdAt: 0,
    lastSeenAt: 0,
    jobId,
    assignedAt: null,
  };
}

const job = (labels: string[]): JobRecord =>
  ({ id: 1, runId: 1, repoId: repo.id, name: "j", labels, durationMs: 0, plannedConclusion: "success", status: "queued" }) as JobRecord;

describe("labelsSatisfy", () => {
  it("needs every job label, ignoring case, and allows extra runner labels", () => {
    expect(labelsSatisfy(["self-hosted", "Linux", "X64", "gpu"], ["SELF-HOSTED", "gpu"])).toBe(true);
    expect(labelsSatisfy(["self-hosted", "Linux"], ["self-hosted", "gpu"])).toBe(false);
    expect(labelsSatisfy([], ["x"])).toBe(false);
  });
});

describe("scopeServes", () => {
  it("a repository runner serves its repository; an org runner its org's repositories its group admits", () => {
    const open = defaultGroup();
    expect(scopeServes("repo:acme/api", open, repo)).toBe(true);
    expect(scopeServes("repo:acme/web", open, repo)).toBe(false);
    expect(scopeServes("org:acme", open, repo)).toBe(true);
    expect(scopeServes("org:other", open, repo)).toBe(false);
    const selected = { ...defaultGroup(), visibility: "selected" as const, selectedRepositoryIds: [2002] };
    expect(scopeServes("org:acme", selected, repo)).toBe(false);
    expect(scopeServes("org:acme", { ...selected, selectedRepositoryIds: [1001] }, repo)).toBe(true);
  });
});

describe("pickRunner", () => {
  it("picks the first waiting runner that is idle and matches", () => {
    const g = defaultGroup();
    const waiting = [
      { runner: runner(1, "repo:acme/api", ["gpu"], 99), group: g },
      { runner: runner(2, "repo:acme/api", ["cpu"]), group: g },
      { runner: runner(3, "org:acme", ["GPU"]), group: g },
      { runner: runner(4, "repo:acme/api", ["gpu"]), group: g },
    ];
    expect(pickRunner(job(["gpu"]), repo, waiting)?.runner.id).toBe(3);
    expect(pickRunner(job(["arm"]), repo, waiting)).toBeUndefined();
  });
});
