/**
 * The emulator's runner protocol (`/_runner/`, test/harness/docs/runner-protocol.md) driven by plain fetch,
 * and GitHub's scheduling and liveness rules behind it: registration tokens, sessions and conflicts, long
 * polls, job hand-out by labels, busy runners, ephemeral deletion, offline detection, removal.
 */
import type { Octokit } from "@octokit/rest";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OpenApiValidator, startGitHubEmulator, type GitHubEmulator } from "../src/index.js";
import { checkedOctokit, ConformanceLog, eventually, ProtocolRunner, rawRegister, rawRemove } from "./github-emulator-fixtures.js";

/** The offline timeout of the tests about liveness (set as a fault); the others use a long one, so a
 * loaded machine cannot expire a session between two steps of a test. */
const OFFLINE_AFTER_MS = 300;
let emu: GitHubEmulator;
let log: ConformanceLog;
let octokit: Octokit;
const emulators: GitHubEmulator[] = [];

beforeAll(async () => {
  emu = await startGitHubEmulator({ token: "t-admin", repos: ["acme/api", "acme/web", "solo/tool"], orgs: ["acme"], offlineAfterMs: 30_000 });
  emulators.push(emu);
  log = new ConformanceLog(OpenApiValidator.load(), emu.apiUrl);
  octokit = checkedOctokit(emu, log);
});

afterAll(async () => {
  await Promise.all(emulators.map((e) => e.stop()));
});

afterEach(async () => {
  await emu.control.reset();
  expect(log.violations.splice(0)).toEqual([]);
});

async function regToken(scope: string): Promise<string> {
  if (!scope.includes("/")) return (await octokit.actions.createRegistrationTokenForOrg({ org: scope })).data.token;
  const [owner, repo] = scope.split("/") as [string, string];
  return (await octokit.actions.createRegistrationTokenForRepo({ owner, repo })).data.token;
}

async function removeToken(scope: string): Promise<string> {
  if (!scope.includes("/")) return (await octokit.actions.createRemoveTokenForOrg({ org: scope })).data.token;
  const [owner, repo] = scope.split("/") as [string, string];
  return (await octokit.actions.createRemoveTokenForRepo({ owner, repo })).data.token;
}

/** Registers and connects a runner. */
async function online(scope: string, name: string, labels: string[], extra: { ephemeral?: boolean; noDefaultLabels?: boolean } = {}): Promise<ProtocolRunner> {
  const runner = await ProtocolRunner.register(emu.url, await regToken(scope), { url: emu.webUrl(scope), name, labels, ...extra });
  expect(await runner.connect()).toBe(201);
  return runner;
}

async function restRunner(scope: string, id: number) {
  if (!scope.includes("/")) return (await octokit.actions.getSelfHostedRunnerForOrg({ org: scope, runner_id: id })).data;
  const [owner, repo] = scope.split("/") as [string, string];
  return (await octokit.actions.getSelfHostedRunnerForRepo({ owner, repo, runner_id: id })).data;
}

describe("registration", () => {
  it("registers with a registration token and returns the .runner settings and a credential", async () => {
    const token = await regToken("acme/api");
    const res = await rawRegister(emu.url, token, { url: emu.webUrl("acme/api"), name: "reg-1", labels: ["gpu", "GPU", "fast"], noDefaultLabels: false, ephemeral: false, replace: false, workFolder: "_work" });
    expect(res.status).toBe(201);
    const body = res.body as Record<string, unknown>;
    expect(body).toMatchObject({
      agentName: "reg-1",
      poolId: 1,
      poolName: "Default",
      serverUrl: `${emu.url}/_runner`,
      gitHubUrl: emu.webUrl("acme/api"),
      workFolder: "_work",
      ephemeral: false,
    });
    expect(typeof body.agentId).toBe("number");
    expect(typeof body.credential).toBe("string");
    const rest = await restRunner("acme/api", body.agentId as number);
    expect(rest).toMatchObject({ name: "reg-1", status: "offline", busy: false, os: "unknown", ephemeral: false });
    // "Only set if the runner has connected to the service at least once" (Octokit's types lack the field).
    expect((rest as Record<string, unknown>).version).toBeUndefined();
    expect(rest.labels.map((l) => `${l.name}:${l.type}`)).toEqual(["self-hosted:read-only", "Linux:read-only", "X64:read-only", "gpu:custom", "fast:custom"]);
    // One registration token serves several registrations within its hour.
    const again = await rawRegister(emu.url, token, { url: emu.webUrl("acme/api"), name: "reg-2", labels: ["x"], noDefaultLabels: true });
    expect(again.status).toBe(201);
    expect((await restRunner("acme/api", (again.body as { agentId: number }).agentId)).labels.map((l) => l.name)).toEqual(["x"]);
  });

  it("refuses unknown, wrong-kind and wrong-scope tokens (401), unserved URLs and unknown groups (404), duplicate names (409)", async () => {
    const token = await regToken("acme/api");
    const body = { url: emu.webUrl("acme/api"), name: "dup", labels: [] };
    expect((await rawRegister(emu.url, "NOTATOKEN", body)).status).toBe(401);
    expect((await rawRegister(emu.url, await removeToken("acme/api"), body)).status).toBe(401);
    expect((await rawRegister(emu.url, await regToken("acme"), body)).status).toBe(401);
    expect((await rawRegister(emu.url, token, { ...body, url: emu.webUrl("acme/nope") })).status).toBe(404);
    const orgToken = await regToken("acme");
    const noGroup = await rawRegister(emu.url, orgToken, { url: emu.webUrl("acme"), name: "g", labels: [], runnerGroup: "gpu-pool" });
    expect(noGroup).toEqual({ status: 404, body: { message: 'Could not find any self-hosted runner group named "gpu-pool".' } });
    expect((await rawRegister(emu.url, token, body)).status).toBe(201);
    expect(await rawRegister(emu.url, token, { ...body, name: "DUP" })).toEqual({ status: 409, body: { message: "A runner exists with the same name DUP." } });
  });

  it("registers into a named organization group", async () => {
    const group = await octokit.request("POST /orgs/{org}/actions/runner-groups", { org: "acme", name: "gpu-pool" });
    // webUrl takes lanekeeper's policy form of the scope too (the fleet configures hand-made runners with it).
    expect(emu.webUrl("org:acme")).toBe(`${emu.url}/acme`);
    const res = await rawRegister(emu.url, await regToken("acme"), { url: emu.webUrl("org:acme"), name: "in-group", labels: [], runnerGroup: "GPU-Pool" });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ poolId: group.data.id, poolName: "gpu-pool" });
    expect((await restRunner("acme", (res.body as { agentId: number }).agentId)).runner_group_id).toBe(group.data.id);
  });

  it("replace keeps the agent id, rewrites the labels and voids the old credential and session", async () => {
    const old = await online("acme/api", "phoenix", ["old"]);
    const res = await rawRegister(emu.url, await regToken("acme/api"), { url: emu.webUrl("acme/api"), name: "phoenix", labels: ["new"], replace: true });
    expect(res.status).toBe(201);
    const fresh = new ProtocolRunner(emu.url, (res.body as { agentId: number }).agentId, (res.body as { credential: string }).credential);
    expect(fresh.agentId).toBe(old.agentId);
    expect((await restRunner("acme/api", old.agentId)).labels.map((l) => l.name)).toEqual(["self-hosted", "Linux", "X64", "new"]);
    expect((await old.poll(100)).status).toBe(401);
    expect(await fresh.connect()).toBe(201);
  });

  it("tokens expire after the TTL (one hour by default)", async () => {
    let now = Date.now();
    const timed = await startGitHubEmulator({ token: "t", repos: ["acme/api"], clock: { now: () => now } });
    emulators.push(timed);
    const o = checkedOctokit(timed, new ConformanceLog(log.validator, timed.apiUrl), "t");
    const reg = (await o.actions.createRegistrationTokenForRepo({ owner: "acme", repo: "api" })).data;
    // expires_at has whole seconds.
    expect(Date.parse(reg.expires_at)).toBe(Math.floor((now + 3600_000) / 1000) * 1000);
    const body = { url: timed.webUrl("acme/api"), name: "early", labels: [] };
    now += 3600_000 - 1000;
    const early = await rawRegister(timed.url, reg.token, body);
    expect(early.status).toBe(201);
    const rm = (await o.actions.createRemoveTokenForRepo({ owner: "acme", repo: "api" })).data.token;
    now += 1000;
    expect((await rawRegister(timed.url, reg.token, { ...body, name: "late" })).status).toBe(401);
    now += 3600_000;
    expect((await rawRemove(timed.url, rm, timed.webUrl("acme/api"), (early.body as { agentId: number }).agentId)).status).toBe(401);
  });
});

describe("sessions and long polls", () => {
  it("one live session per runner (409), bad credentials (401), online while connected and offline at once after DELETE", async () => {
    const runner = await online("acme/api", "sess", []);
    expect(await restRunner("acme/api", runner.agentId)).toMatchObject({ status: "online", os: "Linux", version: "2.336.0" });
    const twin = new ProtocolRunner(emu.url, runner.agentId, runner.credential);
    expect(await twin.connect()).toBe(409);
    expect((await twin.call("POST", "/sessions", { agentId: runner.agentId })).body).toEqual({ message: "A session for this runner already exists." });
    expect(await new ProtocolRunner(emu.url, runner.agentId, "wrong").connect()).toBe(401);
    expect(await new ProtocolRunner(emu.url, runner.agentId + 1000, runner.credential).connect()).toBe(401);
    expect((await runner.disconnect()).status).toBe(204);
    expect((await restRunner("acme/api", runner.agentId)).status).toBe("offline");
    expect((await runner.poll(50)).status).toBe(404);
    expect(await twin.connect()).toBe(201);
  });

  it("a poll waits for work (204 when none) and returns a job created meanwhile; started/completed drive the job", async () => {
    const runner = await online("acme/api", "poller", ["gpu"]);
    expect((await runner.poll(50)).status).toBe(204);
    const pending = runner.poll(5000);
    const { id } = await emu.control.createJob("acme/api", { labels: ["gpu"], durationMs: 1234, conclusion: "failure", name: "build" });
    const res = await pending;
    expect(res).toEqual({ status: 200, body: { type: "job", job: { id, name: "build", labels: ["gpu"], durationMs: 1234, conclusion: "failure" } } });
    expect((await restRunner("acme/api", runner.agentId)).busy).toBe(true);
    expect(await emu.control.getJob(id)).toMatchObject({ status: "queued", runnerName: "poller", runnerId: runner.agentId });
    expect((await runner.started(id)).status).toBe(204);
    expect((await emu.control.getJob(id)).status).toBe("in_progress");
    expect((await runner.completed(id, "bogus")).status).toBe(400);
    expect((await runner.completed(id, "failure")).status).toBe(204);
    expect(await emu.control.getJob(id)).toMatchObject({ status: "completed", conclusion: "failure" });
    expect((await restRunner("acme/api", runner.agentId)).busy).toBe(false);
    // Reports for jobs the session does not hold are 404.
    const other = await online("acme/api", "other", []);
    expect((await other.started(id)).status).toBe(404);
    expect((await other.completed(9999, "success")).status).toBe(404);
  });

  it("a runner that stops polling goes offline after offline-after-ms; a poll in flight keeps it online", async () => {
    await emu.control.setFaults({ offlineAfterMs: OFFLINE_AFTER_MS });
    const runner = await online("acme/api", "silent", []);
    const longPoll = runner.poll(OFFLINE_AFTER_MS * 4);
    await new Promise((r) => setTimeout(r, OFFLINE_AFTER_MS * 2));
    expect((await emu.control.listRunners())[0]?.status).toBe("online");
    expect((await longPoll).status).toBe(204);
    await eventually(async () => (await restRunner("acme/api", runner.agentId)).status === "offline", 10_000, "offline");
    // The expired session is gone (the runner would print "registration has been deleted" and exit 1)…
    expect((await runner.poll(50)).status).toBe(404);
    // …but the registration is not: a new session brings it back online.
    expect(await runner.connect()).toBe(201);
    expect((await restRunner("acme/api", runner.agentId)).status).toBe("online");
  });

  it("the offlineAfterMs fault overrides the option at runtime", async () => {
    await emu.control.setFaults({ offlineAfterMs: 60_000 });
    const runner = await online("acme/api", "patient", []);
    await new Promise((r) => setTimeout(r, OFFLINE_AFTER_MS * 2));
    expect((await restRunner("acme/api", runner.agentId)).status).toBe("online");
    await emu.control.setFaults({ offlineAfterMs: 50 });
    await eventually(async () => (await restRunner("acme/api", runner.agentId)).status === "offline", 10_000, "offline");
  });
});

describe("scheduling", () => {
  it("hands a job only to a runner whose labels contain all of the job's labels, ignoring case", async () => {
    const runner = await online("acme/api", "picky", ["gpu"]);
    const miss = await emu.control.createJob("acme/api", { labels: ["gpu", "arm64"] });
    expect((await runner.poll(100)).status).toBe(204);
    const hit = await emu.control.createJob("acme/api", { labels: ["SELF-HOSTED", "linux", "GPU"] });
    expect((await runner.nextJob()).id).toBe(hit.id);
    expect((await emu.control.getJob(miss.id)).status).toBe("queued");
    expect((await emu.control.getJob(miss.id)).runnerId).toBeNull();
  });

  it("never hands a second job to a busy runner; another idle runner takes it; the oldest job goes first", async () => {
    const a = await online("acme/api", "a", ["pool"]);
    const j1 = await emu.control.createJob("acme/api", { labels: ["pool"] });
    const j2 = await emu.control.createJob("acme/api", { labels: ["pool"] });
    expect((await a.nextJob()).id).toBe(j1.id);
    await a.started(j1.id);
    expect((await a.poll(150)).status).toBe(204);
    const b = await online("acme/api", "b", ["pool"]);
    expect((await b.nextJob()).id).toBe(j2.id);
    await a.completed(j1.id, "success");
    const j3 = await emu.control.createJob("acme/api", { labels: ["pool"] });
    expect((await a.nextJob()).id).toBe(j3.id);
  });

  it("an ephemeral runner gets one job and its registration is deleted after it", async () => {
    const eph = await online("acme/api", "eph", ["once"], { ephemeral: true });
    const j1 = await emu.control.createJob("acme/api", { labels: ["once"] });
    const j2 = await emu.control.createJob("acme/api", { labels: ["once"] });
    expect((await eph.nextJob()).id).toBe(j1.id);
    await eph.started(j1.id);
    await eph.completed(j1.id, "success");
    expect((await octokit.actions.listSelfHostedRunnersForRepo({ owner: "acme", repo: "api", name: "eph" })).data.total_count).toBe(0);
    expect((await eph.poll(50)).status).toBe(404);
    expect(await eph.connect()).toBe(404);
    expect((await emu.control.getJob(j2.id)).status).toBe("queued");
  });

  it("a JIT-config runner connects with the bundled credential, runs one job and is deleted", async () => {
    const jit = await octokit.actions.generateRunnerJitconfigForOrg({ org: "acme", name: "jit-eph", runner_group_id: 1, labels: ["jit"] });
    const files = JSON.parse(Buffer.from(jit.data.encoded_jit_config, "base64").toString()) as Record<string, string>;
    const cred = (JSON.parse(Buffer.from(files[".credentials"] as string, "base64").toString()) as { data: { token: string } }).data.token;
    const runner = new ProtocolRunner(emu.url, jit.data.runner.id, cred);
    expect(await runner.connect()).toBe(201);
    const job = await emu.control.createJob("acme/web", { labels: ["jit"] });
    expect((await runner.nextJob()).id).toBe(job.id);
    await runner.completed(job.id, "success");
    expect((await octokit.actions.listSelfHostedRunnersForOrg({ org: "acme" })).data.total_count).toBe(0);
  });

  it("organization runners serve the organization's repositories their group admits, and no others", async () => {
    const org = await online("acme", "org-runner", ["shared"]);
    const foreign = await emu.control.createJob("solo/tool", { labels: ["shared"] });
    expect((await org.poll(100)).status).toBe(204);
    const own = await emu.control.createJob("acme/web", { labels: ["shared"] });
    expect((await org.nextJob()).id).toBe(own.id);
    await org.completed(own.id, "success");
    expect((await emu.control.getJob(foreign.id)).status).toBe("queued");

    // A group restricted to acme/web: its runner no longer takes acme/api jobs.
    const web = await octokit.actions.listWorkflowRunsForRepo({ owner: "acme", repo: "web" });
    const webId = web.data.workflow_runs[0]!.repository.id;
    const group = await octokit.request("POST /orgs/{org}/actions/runner-groups", { org: "acme", name: "web-only", visibility: "selected", selected_repository_ids: [webId], runners: [org.agentId] });
    expect(group.status).toBe(201);
    const api = await emu.control.createJob("acme/api", { labels: ["shared"] });
    expect((await org.poll(100)).status).toBe(204);
    const web2 = await emu.control.createJob("acme/web", { labels: ["shared"] });
    expect((await org.nextJob()).id).toBe(web2.id);
    expect((await emu.control.getJob(web2.id)).runnerGroupId).toBe(group.data.id);
    expect((await emu.control.getJob(api.id)).status).toBe("queued");
  });
});

describe("session loss and cancellation", () => {
  it("kill -9 while running: the session expires and the job fails; handed out but never started: the job is queued again", async () => {
    await emu.control.setFaults({ offlineAfterMs: OFFLINE_AFTER_MS });
    const victim = await online("acme/api", "victim", ["k"]);
    const j1 = await emu.control.createJob("acme/api", { labels: ["k"] });
    expect((await victim.nextJob()).id).toBe(j1.id);
    await victim.started(j1.id);
    // No more polls: what a killed listener looks like from the server.
    const failed = await emu.control.waitForJob(j1.id, "completed", 10_000);
    expect(failed).toMatchObject({ status: "completed", conclusion: "failure" });

    const flaky = await online("acme/api", "flaky", ["k"]);
    const j2 = await emu.control.createJob("acme/api", { labels: ["k"] });
    expect((await flaky.nextJob()).id).toBe(j2.id);
    await eventually(async () => (await emu.control.getJob(j2.id)).runnerId === null, 10_000, "requeue");
    expect((await emu.control.getJob(j2.id)).status).toBe("queued");
    const rescuer = await online("acme/api", "rescuer", ["k"]);
    expect((await rescuer.nextJob()).id).toBe(j2.id);
  });

  it("a runner reporting cancelled cancels the job; deleting the session mid-job cancels it too", async () => {
    const runner = await online("acme/api", "stopper", ["c"]);
    const j1 = await emu.control.createJob("acme/api", { labels: ["c"] });
    await runner.nextJob();
    await runner.started(j1.id);
    await runner.completed(j1.id, "cancelled");
    const j2 = await emu.control.createJob("acme/api", { labels: ["c"] });
    await runner.nextJob();
    await runner.started(j2.id);
    expect((await runner.disconnect()).status).toBe(204);
    expect(await emu.control.getJob(j2.id)).toMatchObject({ status: "completed", conclusion: "cancelled" });
    expect((await emu.control.listJobs("completed")).filter((j) => j.conclusion === "cancelled")).toHaveLength(2);
  });

  it("a queued job can be cancelled through the control API until a runner has it", async () => {
    const job = await emu.control.createJob("acme/api", { labels: ["nobody"] });
    expect(await emu.control.cancelJob(job.id)).toMatchObject({ status: "completed", conclusion: "cancelled" });
    const runner = await online("acme/api", "taker", ["taken"]);
    const taken = await emu.control.createJob("acme/api", { labels: ["taken"] });
    await runner.nextJob();
    await expect(emu.control.cancelJob(taken.id)).rejects.toMatchObject({ code: "CONTROL_REQUEST_FAILED" });
  });
});

describe("removal", () => {
  it("removes with a remove token (204), refuses while busy (422), and the registration is then gone (404)", async () => {
    const runner = await online("acme/api", "leaver", ["r"]);
    const url = emu.webUrl("acme/api");
    const job = await emu.control.createJob("acme/api", { labels: ["r"] });
    await runner.nextJob();
    await runner.started(job.id);
    const rm = await removeToken("acme/api");
    expect(await rawRemove(emu.url, rm, url, runner.agentId)).toEqual({ status: 422, body: { message: 'Bad request - Runner "leaver" is still running a job"' } });
    expect((await rawRemove(emu.url, await regToken("acme/api"), url, runner.agentId)).status).toBe(401);
    await runner.completed(job.id, "success");
    expect((await rawRemove(emu.url, rm, url, runner.agentId)).status).toBe(204);
    expect((await rawRemove(emu.url, rm, url, runner.agentId)).status).toBe(404);
    expect((await runner.poll(50)).status).toBe(404);
    expect(await runner.connect()).toBe(404);
  });

  it("REST deletion of an idle runner ends its long poll with 404", async () => {
    const runner = await online("acme/api", "deleted-while-polling", []);
    const pending = runner.poll(5000);
    await eventually(async () => (await emu.control.stats()).runnerProtocol["GET /_runner/sessions/{sessionId}/message"] === 1, 5000, "poll");
    await octokit.actions.deleteSelfHostedRunnerFromRepo({ owner: "acme", repo: "api", runner_id: runner.agentId });
    expect((await pending).status).toBe(404);
  });
});
