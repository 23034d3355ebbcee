/**
 * A whole lanekeeper fleet on this machine, from real parts: nats-server with JetStream and the per-host
 * permission config (one NATS user per agent, one for the coordinator), the GitHub emulator, N real
 * `lanekeeper-agent` processes (systemd agents run INSIDE a real systemd sandbox, container agents talk to a
 * podman service), a coordinator policy generated from the agents' enrollment bundles, and unmanaged runners
 * that must never be touched: a hand-made `actions.runner.<scope>.handmade.service` unit, a hand-made runner
 * container and a GitHub-only registration.
 *
 * Everything is driven through the shipped command lines (`lanekeeper-agent init/run/status`, `lanekeeper …`),
 * so the end-to-end suites, the demo and the benchmark exercise exactly what an operator runs. Passwords, the
 * GitHub token and the coordinator key are generated at run time; they are written to 0600 files or handed to
 * child processes in their environment, never printed.
 *
 * The parts live beside this file: fleet-types.ts (options and handles), fleet-constants.ts, fleet-policy.ts
 * (policy rendering), fleet-agent.ts (agent handles), fleet-handmade.ts (hand-made runners), fleet-manifest.ts
 * (clean-up after dead test processes) and fleet-util.ts.
 */
import { randomBytes } from "node:crypto";
import { chmod, cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseDocument } from "yaml";
import { realismFromEnv } from "./github-emulator/realism.js";
import { startGitHubEmulator } from "./github-emulator/server.js";
import { LauncherError } from "./launcher-error.js";
import type { NatsAgentUser, NatsCoordinatorUser } from "./nats-permissions.js";
import { startNatsCluster, type NatsClusterHandle } from "./nats-cluster.js";
import { startNatsServer, type NatsServerHandle } from "./nats-server.js";
import { startPodmanService, type PodmanService } from "./podman-service.js";
import { makeTempDir, readTail, runCommand } from "./process-util.js";
import { buildRunnerImage, runnerEmulatorDir, type RunnerImage } from "./runner-image.js";
import { startSystemdSandbox, type SystemdSandbox } from "./systemd-sandbox.js";
import { ALL_AGENT_ACTIONS, FLEET_CLI_TIMEOUT_MS, FLEET_RUNNER_VERSION, FLEET_GITHUB_TOKEN_ENV, FLEET_NATS_PASSWORD_ENV, FLEET_COORDINATOR_NATS_USER, HANDMADE_RUNNER_NAME, GITHUB_ONLY_RUNNER_NAME, AGENT_BIN, COORDINATOR_BIN } from "./fleet-constants.js";
import type { FleetRuntime, FleetAgentControl, FleetAgentSpec, FleetPoolSpec, FleetOptions, FleetEnrollmentBundle, FleetHandmade, Fleet } from "./fleet-types.js";
import { secret, settleAll, defaultFleetBaseDir, parseCliJson, cliResult, dashedScope, setIn, githubRest, scopePath, editYamlFile } from "./fleet-util.js";
import { type FleetManifest, writeManifest, sweepStaleFleets } from "./fleet-manifest.js";
import { renderPolicy } from "./fleet-policy.js";
import { FleetAgentHandle, removeLaneContainers } from "./fleet-agent.js";
import { startHandmadeUnit, startHandmadeContainer, snapshotHandmade, verifyHandmade } from "./fleet-handmade.js";

const DEFAULT_AGENTS: FleetAgentSpec[] = [
  { hostId: "build01", runtime: "systemd" },
  { hostId: "build02", runtime: "systemd" },
  { hostId: "build03", runtime: "container" },
];

const DEFAULT_POOLS: Record<string, FleetPoolSpec> = {
  "linux-x64": { backend: "systemd", labels: ["linux", "x64", "lanes-systemd"] },
  "linux-container": { backend: "container", labels: ["linux", "container", "lanes-container"] },
};

const HOST_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** What the fleet reads from a policy template. */
interface PolicyShape {
  scopes?: Record<string, { optIn?: boolean; runnerGroup?: string }>;
  pools?: Record<string, { backend: FleetRuntime; labels?: string[] }>;
}

/**
 * Starts a fleet (see the module comment). On any failure everything started so far is stopped again and the
 * error is rethrown.
 */
export async function startFleet(opts: FleetOptions = {}): Promise<Fleet> {
  const log = opts.log ?? ((): void => undefined);
  const repos = opts.repos ?? ["acme/api"];
  const orgs = opts.orgs ?? [];
  const specs = opts.agents ?? DEFAULT_AGENTS;
  if (specs.length === 0) throw new LauncherError("BAD_OPTIONS", "startFleet: at least one agent is needed");
  const seen = new Set<string>();
  for (const s of specs) {
    if (!HOST_ID.test(s.hostId)) throw new LauncherError("BAD_OPTIONS", `startFleet: bad hostId ${JSON.stringify(s.hostId)}`);
    if (seen.has(s.hostId)) throw new LauncherError("BAD_OPTIONS", `startFleet: hostId ${s.hostId} appears twice`);
    seen.add(s.hostId);
  }
  // With a template, the agents' default allowlists follow its opted-in scopes and its pools.
  const template = opts.policyTemplate !== undefined ? (parseDocument(await readFile(opts.policyTemplate, "utf8")).toJS() as PolicyShape) : undefined;
  const scopes =
    opts.scopes ??
    (template?.scopes
      ? Object.fromEntries(Object.entries(template.scopes).flatMap(([k, v]) => (v.optIn === true ? [[k, { optIn: true }]] : [])))
      : Object.fromEntries(repos.map((r) => [r, { optIn: true }])));
  const pools =
    opts.pools ??
    (template?.pools
      ? Object.fromEntries(Object.entries(template.pools).map(([k, v]) => [k, { backend: v.backend, labels: v.labels ?? [] }]))
      : DEFAULT_POOLS);
  const firstScope = Object.keys(scopes)[0] ?? repos[0] ?? "acme/api";
  const wantContainer = specs.some((s) => s.runtime === "container");

  const baseDir = resolve(opts.baseDir ?? defaultFleetBaseDir());
  if (/^\/(var\/)?tmp(\/|$)/.test(baseDir)) {
    throw new LauncherError("BAD_OPTIONS", `startFleet: baseDir ${baseDir} is under /tmp, which the systemd sandbox replaces`);
  }
  await mkdir(baseDir, { recursive: true });
  await sweepStaleFleets(baseDir);
  const dir = await makeTempDir("lk-fleet-", baseDir);
  await chmod(dir, 0o755);
  const manifest: FleetManifest = { ownerPid: process.pid, containerHosts: [], containers: [] };
  await writeManifest(dir, manifest);

  const cleanups: { what: string; fn: () => Promise<unknown> }[] = [];
  const agents: FleetAgentHandle[] = [];
  let stopped = false;
  const stopAll = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const c of cleanups.reverse()) {
      try {
        await c.fn();
      } catch (e) {
        log(`cleanup of ${c.what} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    // --- NATS with one user per agent and the coordinator.
    const agentUsers: NatsAgentUser[] = specs.map((s) => ({ hostId: s.hostId, user: `agent-${s.hostId}`, password: secret() }));
    const coordinatorUser: NatsCoordinatorUser = { user: FLEET_COORDINATOR_NATS_USER, password: secret() };
    const users = { agents: agentUsers, coordinator: coordinatorUser };
    let natsCluster: NatsClusterHandle | undefined;
    let nats: NatsServerHandle;
    if (opts.natsCluster === undefined) {
      log("starting nats-server (JetStream, one NATS user per host)");
      nats = await startNatsServer({ users, baseDir: dir });
      cleanups.push({ what: "nats-server", fn: () => nats.stop() });
    } else {
      log(`starting a ${opts.natsCluster}-node NATS JetStream cluster (one NATS user per host on every node)`);
      const cluster = await startNatsCluster({ size: opts.natsCluster, users, baseDir: dir });
      natsCluster = cluster;
      nats = cluster.nodes[0]!;
      cleanups.push({ what: "NATS cluster", fn: () => cluster.stop() });
    }
    const natsServers = natsCluster?.urls ?? [nats.url];

    // --- GitHub emulator.
    log(`starting the GitHub emulator (${[...repos, ...orgs.map((o) => `org:${o}`)].join(", ")})`);
    // GitHub's imperfections are on unless the caller or LK_EMULATOR_REALISM=off says otherwise.
    const realism = opts.github?.realism ?? realismFromEnv();
    const github = await startGitHubEmulator({ ...opts.github, realism, repos, orgs, token: secret() });
    cleanups.push({ what: "GitHub emulator", fn: () => github.stop() });

    // --- The coordinator's directory: its signing key (made by `lanekeeper keys generate` once the policy
    // exists) and its audit chain.
    const coordDir = join(dir, "coordinator");
    await mkdir(coordDir, { mode: 0o755 });
    const coordinatorKeyPath = join(coordDir, "coordinator.key");
    const auditPath = join(coordDir, "audit.jsonl");

    // --- Real systemd (one sandbox per systemd host: each host has its own PID 1, units and /proc) and
    // podman, started side by side.
    const sandboxes: Record<string, SystemdSandbox> = {};
    let podman: PodmanService | undefined;
    let image: RunnerImage | undefined;
    const systemdHosts = specs.filter((s) => s.runtime === "systemd").map((s) => s.hostId);
    if (systemdHosts.length > 0) log(`booting systemd in ${systemdHosts.length} sandbox(es) (PID, mount and cgroup namespaces): ${systemdHosts.join(", ")}`);
    if (wantContainer) log("building the runner image (podman import, pinned by digest) and starting the podman API service");
    await settleAll([
      ...systemdHosts.map(async (hostId) => {
        const sd = await startSystemdSandbox();
        sandboxes[hostId] = sd;
        cleanups.push({ what: `systemd sandbox of ${hostId}`, fn: () => sd.stop() });
      }),
      (async () => {
        if (!wantContainer) return;
        image = await buildRunnerImage();
      })(),
      (async () => {
        if (!wantContainer) return;
        const pm = await startPodmanService({ baseDir: dir });
        podman = pm;
        cleanups.push({ what: "podman service", fn: () => pm.stop() });
      })(),
    ]);

    // --- Agents: init (keys, observe-only config), then the config edited to opt in with an allowlist.
    const env = { ...process.env, ...opts.agentEnv };
    log(`lanekeeper-agent init on ${specs.map((s) => `${s.hostId} (${s.runtime})`).join(", ")}`);
    const made = await settleAll(
      specs.map(async (spec, i): Promise<FleetAgentHandle> => {
        const user = agentUsers[i];
        if (!user) throw new LauncherError("BAD_OPTIONS", "internal: agent user missing");
        const sandbox = sandboxes[spec.hostId];
        const hostDir = join(dir, "hosts", spec.hostId);
        await mkdir(hostDir, { recursive: true, mode: 0o755 });
        const stateDir = join(hostDir, "state");
        const configPath = join(hostDir, "agent.yaml");
        const initArgs = [AGENT_BIN, "init", "--host-id", spec.hostId, "--config", configPath, "--state-dir", stateDir, "--json"];
        const init = sandbox
          ? await sandbox.exec(process.execPath, initArgs, { env, timeoutMs: FLEET_CLI_TIMEOUT_MS })
          : await runCommand(process.execPath, initArgs, { env, timeoutMs: FLEET_CLI_TIMEOUT_MS });
        if (init.code !== 0) {
          throw new LauncherError("COMMAND_FAILED", `lanekeeper-agent init for ${spec.hostId} exited ${init.code}: ${init.stderr.trim()}`);
        }
        const bundle = parseCliJson(init.stdout) as FleetEnrollmentBundle | undefined;
        if (!bundle || bundle.hostId !== spec.hostId || typeof bundle.identityKey !== "string") {
          throw new LauncherError("COMMAND_FAILED", `lanekeeper-agent init for ${spec.hostId} printed no enrollment bundle`);
        }
        const control: FleetAgentControl = {
          enabled: true,
          scopes: Object.keys(scopes),
          pools: Object.entries(pools)
            .filter(([, p]) => p.backend === spec.runtime)
            .map(([name]) => name),
          backends: [spec.runtime],
          actions: [...ALL_AGENT_ACTIONS],
          images: spec.runtime === "container" && image ? [image.digestReference] : [],
          maxLanes: 50,
          ...spec.control,
        };
        // Each host has its own runner distribution directory, as real hosts do: an agent prunes the versions
        // its own lanes no longer use, so a directory shared by two agents loses versions the other still needs.
        // The fleet's version is also staged there by hand (the layout before verified downloads), for intents
        // that name no download.
        const runnerDist = join(hostDir, "runner-dist");
        if (sandbox) {
          await mkdir(runnerDist, { recursive: true });
          await cp(runnerEmulatorDir, join(runnerDist, FLEET_RUNNER_VERSION), { recursive: true });
        }
        const handmadeRoot = join(hostDir, "handmade");
        await mkdir(handmadeRoot, { recursive: true });
        const statusSocket = join(hostDir, "agent.sock");
        await editYamlFile(configPath, (doc) => {
          setIn(doc, ["nats"], { ...(natsCluster === undefined ? { url: nats.url } : { servers: natsServers }), user: user.user, password: user.password });
          setIn(doc, ["statusSocket"], statusSocket);
          setIn(doc, ["runnerRoots"], [handmadeRoot]);
          // Lanes run as root here (the runtime then sets RUNNER_ALLOW_RUNASROOT for the runner); production
          // installs use the unprivileged user install-agent.sh creates.
          setIn(doc, ["runAsUser"], "root");
          setIn(doc, ["inventoryIntervalMs"], 1000);
          setIn(doc, ["logLevel"], "info");
          setIn(doc, ["health"], { maxRestarts: 3, windowMs: 600_000, backoffBaseMs: 500, backoffMaxMs: 5000 });
          if (sandbox) {
            setIn(doc, ["unitDir"], sandbox.unitDir);
            setIn(doc, ["runnerDistPath"], runnerDist);
          }
          if (spec.runtime === "container" && podman) setIn(doc, ["containerSocket"], podman.socketPath);
          // The emulator is a plain-http loopback origin: allowed only through the explicit, warned-about option.
          setIn(doc, ["github"], { allowInsecureHttpOrigins: [new URL(github.url).origin] });
          // Runner archives come from the emulator too (checksums still verified).
          setIn(doc, ["runnerDownloads"], { allowInsecureHttpOrigins: [new URL(github.url).origin] });
          setIn(doc, ["control"], control);
          for (const [k, v] of Object.entries(spec.config ?? {})) setIn(doc, [k], v);
        });
        // It now holds the NATS password.
        await chmod(configPath, 0o600);
        const laneRoot = (parseDocument(await readFile(configPath, "utf8")).get("laneRoot") as string | undefined) ?? `${stateDir}-lanes`;
        const agent = new FleetAgentHandle({ hostId: spec.hostId, runtime: spec.runtime, dir: hostDir, stateDir, configPath, statusSocket, laneRoot, bundle, env, sandbox });
        cleanups.push({ what: `agent ${spec.hostId}`, fn: () => agent.stop() });
        if (spec.runtime === "container") {
          manifest.containerHosts.push({ hostId: spec.hostId, laneRoot });
          await writeManifest(dir, manifest);
          cleanups.push({ what: `lane containers of ${spec.hostId}`, fn: () => removeLaneContainers(spec.hostId, laneRoot) });
        }
        return agent;
      }),
    );
    agents.push(...made);

    // --- Unmanaged runners, before the agents start so the first inventory already reports them.
    const hm = opts.handmade ?? {};
    const handmade: { unit?: FleetHandmade["unit"]; container?: FleetHandmade["container"]; registrations: string[] } = { registrations: [] };
    const sdAgent = agents.find((a) => a.runtime === "systemd");
    const sdOfAgent = sdAgent ? sandboxes[sdAgent.hostId] : undefined;
    if ((hm.systemd ?? true) && sdAgent && sdOfAgent) {
      log(`${sdAgent.hostId}: hand-made runner unit actions.runner.${dashedScope(firstScope)}.${HANDMADE_RUNNER_NAME}.service (unmanaged)`);
      handmade.unit = await startHandmadeUnit(sdOfAgent, github, sdAgent, firstScope);
      handmade.registrations.push(HANDMADE_RUNNER_NAME);
    }
    const ctAgent = agents.find((a) => a.runtime === "container");
    if ((hm.container ?? true) && podman && image && ctAgent) {
      const name = `handmade-runner-${ctAgent.hostId}-${randomBytes(3).toString("hex")}`;
      log(`${ctAgent.hostId}: hand-made runner container ${name} (unmanaged)`);
      manifest.containers.push(name);
      await writeManifest(dir, manifest);
      cleanups.push({ what: `container ${name}`, fn: () => runCommand("podman", ["rm", "-f", "-t", "0", name], { timeoutMs: 60_000 }) });
      handmade.container = await startHandmadeContainer(github, image, ctAgent, firstScope, name);
      handmade.registrations.push(name);
    }
    if (hm.githubOnly ?? true) {
      log(`GitHub-only registration ${GITHUB_ONLY_RUNNER_NAME} (no host, unmanaged)`);
      await githubRest(github, "POST", `${scopePath(firstScope)}/actions/runners/generate-jitconfig`, {
        name: GITHUB_ONLY_RUNNER_NAME,
        runner_group_id: 1,
        labels: ["self-hosted", "ghost"],
      });
      handmade.registrations.push(GITHUB_ONLY_RUNNER_NAME);
    }

    // --- Coordinator policy from the enrollment bundles.
    const policyPath = join(dir, "lanekeeper.yaml");
    const policyText = await renderPolicy({
      template: opts.policyTemplate,
      github,
      nats,
      ...(natsCluster === undefined ? {} : { cluster: { urls: natsCluster.urls, replicas: Math.min(natsCluster.nodes.length, 3) } }),
      coordinatorKeyPath,
      auditPath,
      specs,
      agents,
      scopes,
      pools,
      lanes: opts.lanes ?? [],
      image,
      drain: { settleMs: 1500, pollMs: 500, deadlineMs: 120_000, ...opts.drain },
      resultTimeoutMs: opts.resultTimeoutMs ?? 60_000,
      ...(opts.verifyTimeoutMs === undefined ? {} : { verifyTimeoutMs: opts.verifyTimeoutMs }),
    });
    await writeFile(policyPath, policyText, { mode: 0o644 });
    log(`policy ${policyPath}: ${specs.filter((s) => s.enroll ?? true).length} hosts enrolled`);

    const coordinatorEnv: Record<string, string> = {
      [FLEET_GITHUB_TOKEN_ENV]: github.token,
      [FLEET_NATS_PASSWORD_ENV]: coordinatorUser.password,
      LANEKEEPER_POLICY: policyPath,
    };
    // The offline root key (pinned by every trust file), the coordinator's key and the trust file the agents
    // install, made by the coordinator's own CLI.
    const rootKeyPath = join(dir, "root.key");
    const rootOut = await runCommand(process.execPath, [COORDINATOR_BIN, "keys", "root-init", "--out", rootKeyPath, "--json"], { cwd: dir, timeoutMs: FLEET_CLI_TIMEOUT_MS });
    if (rootOut.code !== 0) throw new LauncherError("COMMAND_FAILED", `lanekeeper keys root-init exited ${rootOut.code}: ${rootOut.stderr.trim()}`);
    const keysOut = await runCommand(process.execPath, [COORDINATOR_BIN, "keys", "generate", "--root-public-key", `${rootKeyPath}.pub`, "--json"], {
      env: { ...process.env, ...coordinatorEnv },
      cwd: dir,
      timeoutMs: FLEET_CLI_TIMEOUT_MS,
    });
    const generated = parseCliJson(keysOut.stdout) as { trustFile?: string } | undefined;
    if (keysOut.code !== 0 || typeof generated?.trustFile !== "string") {
      throw new LauncherError("COMMAND_FAILED", `lanekeeper keys generate exited ${keysOut.code}: ${keysOut.stderr.trim()}`);
    }
    const trustPath = generated.trustFile;
    for (const a of agents) {
      await a.editConfig((doc) => {
        doc.trustFile = trustPath;
      });
    }
    log(`coordinator key generated (lanekeeper keys generate); trust file ${trustPath} installed on every agent`);

    log(`lanekeeper-agent run on ${agents.map((a) => a.hostId).join(", ")}`);
    await settleAll(agents.map((a) => a.start()));

    const snapshot = await snapshotHandmade(github, sdOfAgent, handmade);

    const fleet: Fleet = {
      dir,
      nats,
      natsCluster,
      github,
      sandboxes,
      podman,
      image,
      agents,
      agent(hostId) {
        const a = agents.find((x) => x.hostId === hostId);
        if (!a) throw new LauncherError("BAD_OPTIONS", `no agent ${hostId} in this fleet`);
        return a;
      },
      policyPath,
      coordinatorKeyPath,
      trustPath,
      rootKeyPath,
      auditPath,
      coordinatorEnv,
      async lanekeeper(args, o = {}) {
        const r = await runCommand(process.execPath, [COORDINATOR_BIN, ...args], {
          env: { ...process.env, ...coordinatorEnv, ...o.env },
          cwd: dir,
          timeoutMs: o.timeoutMs ?? FLEET_CLI_TIMEOUT_MS,
        });
        return cliResult(r);
      },
      async editPolicy(edit) {
        await editYamlFile(policyPath, (doc) => {
          const plain = doc.toJS() as Record<string, unknown>;
          edit(plain);
          doc.contents = doc.createNode(plain);
        });
      },
      handmade: {
        ...handmade,
        verifyUntouched: () => verifyHandmade(github, sdOfAgent, handmade, snapshot),
      },
      stop: stopAll,
    };
    return fleet;
  } catch (e) {
    // Keep the agents' logs in the error: they say why an agent did not come up.
    let tails = "";
    for (const a of agents) {
      const t = await readTail(a.logPath, 1500);
      if (t) tails += `\n--- ${a.hostId} agent log tail:\n${t}`;
    }
    await stopAll();
    if (e instanceof Error && tails) e.message += tails;
    throw e;
  }
}
