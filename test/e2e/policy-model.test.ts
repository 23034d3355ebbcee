// Acceptance: a policy model with desired lanes and allowed hosts. The committed example policy is valid; the
// coordinator plans exactly the desired lanes, only on the hosts a lanes entry lists (enrolled and opted in),
// within capacity, and never plans anything for the unmanaged runners it sees; a policy that breaks a rule is
// refused with `path: message` before anything is observed or changed.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parsePolicy } from "@lanekeeper/shared";
import { GITHUB_ONLY_RUNNER_NAME, HANDMADE_RUNNER_NAME, type Fleet } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeCli, e2eFleet, managedRunners, planJson } from "./e2e-fixture.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/demo/lanekeeper.yaml", import.meta.url));
const SCOPE = "acme/api";

let fleet: Fleet;
let policyText: string;

beforeAll(async () => {
  fleet = await e2eFleet({
    // Every scope the example declares exists on GitHub (acme/web too, though not opted in).
    repos: [SCOPE, "acme/web"],
    agents: [
      { hostId: "build01", runtime: "systemd", capacity: 4 },
      { hostId: "build02", runtime: "systemd", capacity: 4 },
      { hostId: "build03", runtime: "container", capacity: 2 },
    ],
    policyTemplate: EXAMPLE,
  });
  policyText = await readFile(fleet.policyPath, "utf8");
});

afterAll(async () => {
  await fleet?.stop();
});

/** Restores the fleet's policy, then applies `edit` to it. */
async function withPolicy(edit: (doc: Record<string, unknown>) => void): Promise<void> {
  await writeFile(fleet.policyPath, policyText);
  await fleet.editPolicy(edit);
}

describe("policy model", () => {
  it("the committed example policy is valid and says what the demo runs", async () => {
    const p = parsePolicy(await readFile(EXAMPLE, "utf8"));
    expect(Object.keys(p.hosts).sort()).toEqual(["build01", "build02", "build03"]);
    expect(p.scopes[SCOPE]?.optIn).toBe(true);
    expect(p.scopes["acme/web"]?.optIn).toBe(false);
    expect(p.pools["linux-x64"]?.backend).toBe("systemd");
    expect(p.pools["linux-container"]?.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(p.lanes.map((l) => [l.pool, l.count, l.hosts])).toEqual([
      ["linux-x64", 4, ["build01", "build02"]],
      ["linux-container", 2, ["build03"]],
      ["linux-burst", undefined, ["build01", "build02"]],
    ]);
    // The demo's scaling part (steps 14-17) starts from this queue-driven entry.
    expect(p.lanes[2]?.scaling).toMatchObject({ min: 0, max: 4, idle: 0, scaleDownAfter: "10m", schedules: [] });
    expect(p.pools["linux-burst"]?.mode).toBe("ephemeral");
    // The fleet's copy is the same policy with this run's keys, URLs and image filled in.
    const filled = parsePolicy(policyText);
    expect(filled.lanes).toEqual(p.lanes);
    expect(filled.hosts.build01?.enrolled.identityKey).toBe(fleet.agent("build01").bundle.identityKey);
    expect(filled.pools["linux-container"]?.image).toBe(fleet.image?.digestReference);
  });

  it("plans exactly the desired lanes, only on listed hosts, and nothing for unmanaged runners", async () => {
    await withPolicy((doc) => {
      doc.lanes = [
        { scope: SCOPE, pool: "linux-x64", count: 3, hosts: ["build01"] },
        { scope: SCOPE, pool: "linux-container", count: 2, hosts: ["build03"] },
      ];
    });
    const before = await fleet.github.control.listRunners();
    const plan = await planJson(fleet);
    const creates = plan.actions.filter((a) => a.kind === "create");
    expect(plan.actions.length).toBe(creates.length);
    expect(creates.filter((a) => a.pool === "linux-x64").map((a) => a.hostId)).toEqual(["build01", "build01", "build01"]);
    expect(creates.filter((a) => a.pool === "linux-container").map((a) => a.hostId)).toEqual(["build03", "build03"]);
    // build02 is enrolled and opted in, but no lanes entry lists it.
    expect(plan.actions.some((a) => a.hostId === "build02")).toBe(false);
    expect(new Set(creates.map((a) => a.laneId)).size).toBe(5);
    for (const a of creates) {
      expect(a.scope).toBe(SCOPE);
      expect(a.laneId.startsWith(`${a.pool}-`)).toBe(true);
      expect(a.reason.code).toBe("SCALE_UP");
    }
    // The unmanaged registrations are seen and classified, never planned for.
    const unmanaged = plan.classification.unmanaged.map((u) => u.name).sort();
    expect(unmanaged).toEqual([...fleet.handmade.registrations].sort());
    expect(unmanaged).toContain(HANDMADE_RUNNER_NAME);
    expect(unmanaged).toContain(GITHUB_ONLY_RUNNER_NAME);
    // plan changed nothing.
    expect(await fleet.github.control.listRunners()).toEqual(before);
    expect(await managedRunners(fleet)).toEqual([]);
  });

  it("spreads a lanes entry over its hosts within each host's capacity", async () => {
    await withPolicy((doc) => {
      const hosts = doc.hosts as Record<string, { capacity: number }>;
      hosts.build01!.capacity = 1;
      hosts.build02!.capacity = 4;
      doc.lanes = [{ scope: SCOPE, pool: "linux-x64", count: 4, hosts: ["build01", "build02"] }];
    });
    const plan = await planJson(fleet);
    const perHost = new Map<string, number>();
    for (const a of plan.actions.filter((x) => x.kind === "create")) perHost.set(a.hostId, (perHost.get(a.hostId) ?? 0) + 1);
    expect(Object.fromEntries(perHost)).toEqual({ build01: 1, build02: 3 });
  });

  it("refuses a policy that breaks a rule with path: message, before observing anything", async () => {
    const cases: [string, (doc: Record<string, unknown>) => void, RegExp][] = [
      [
        "more lanes than capacity",
        (doc) => {
          doc.lanes = [{ scope: SCOPE, pool: "linux-x64", count: 50, hosts: ["build01"] }];
        },
        /lanes\[0\]\.count.*do not fit/,
      ],
      [
        "a host that is not enrolled",
        (doc) => {
          doc.lanes = [{ scope: SCOPE, pool: "linux-x64", count: 1, hosts: ["build99"] }];
        },
        /lanes\[0\]\.hosts\[0\].*not enrolled/,
      ],
      [
        "an undeclared pool",
        (doc) => {
          doc.lanes = [{ scope: SCOPE, pool: "gpu", count: 1, hosts: ["build01"] }];
        },
        /lanes\[0\]\.pool.*not declared/,
      ],
      [
        "a reserved lk- label",
        (doc) => {
          (doc.pools as Record<string, { labels: string[] }>)["linux-x64"]!.labels = ["lk-managed"];
        },
        /pools\.linux-x64\.labels/,
      ],
      [
        "a container pool not pinned by digest",
        (doc) => {
          (doc.pools as Record<string, { image: string }>)["linux-container"]!.image = "localhost/lanekeeper/runner-emulator:latest";
        },
        /pools\.linux-container\.image/,
      ],
    ];
    const statsBefore = (await fleet.github.control.stats()).total;
    for (const [what, edit, message] of cases) {
      await withPolicy(edit);
      const r = await fleet.lanekeeper(["plan"]);
      expect(r.code, `${what}: ${describeCli(r)}`).toBe(3);
      expect(r.stderr, what).toMatch(message);
    }
    // Refused before any GitHub request.
    expect((await fleet.github.control.stats()).total).toEqual(statsBefore);
  });
});
