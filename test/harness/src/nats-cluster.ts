import { createServer } from "node:net";
import { connect, type ConnectionOptions } from "nats";
import { LauncherError } from "./launcher-error.js";
import { NATS_START_TIMEOUT_MS } from "./launcher-limits.js";
import { startNatsServer, type NatsServerHandle, type NatsServerOptions, type NatsUsers } from "./nats-server.js";
import { waitUntil } from "./process-util.js";

/** Options of {@link startNatsCluster}. */
export interface NatsClusterOptions {
  /** Servers in the cluster. @default 3 */
  size?: number;
  /** Cluster name (nats-server `cluster.name`). @default "lk" */
  name?: string;
  /** lanekeeper's logins with per-host permissions, the same on every node (see `renderNatsConfig`). */
  users?: NatsUsers;
  /** Raw config text appended to every node's config. */
  config?: string;
  /** Parent of the nodes' temp directories. */
  baseDir?: string;
  /** How long to wait for the cluster to elect a JetStream meta leader. @default NATS_START_TIMEOUT_MS */
  startTimeoutMs?: number;
}

/** A running nats-server cluster on loopback: one {@link NatsServerHandle} per node. */
export interface NatsClusterHandle {
  /** Client URLs of every node, node 0 first (what a policy's `natsServers` lists). */
  readonly urls: string[];
  /** The nodes; each can be halted (`halt`, a killed node) and resumed on its own port and store. */
  readonly nodes: readonly NatsServerHandle[];
  /** Node `i`'s `server_name` (`<name>-n<i+1>`), as JetStream reports stream and meta leaders. */
  serverName(i: number): string;
  /** The index of the node named `serverName` (e.g. a stream's leader), or -1. */
  nodeIndex(serverName: string): number;
  /** Halt every node (a whole-cluster outage); {@link resumeAll} brings them back. */
  haltAll(opts?: { signal?: NodeJS.Signals }): Promise<void>;
  /** Resume every halted node and wait until JetStream has a meta leader again. */
  resumeAll(): Promise<void>;
  /** Wait until every running node answers JetStream requests (the cluster has a meta leader). */
  waitForJetStream(timeoutMs?: number): Promise<void>;
  /** Stop every node and remove their directories. Idempotent. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the cluster ports must be known before any node starts, to list the routes). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a JetStream cluster of `size` nats-servers on loopback (3 by default): each node with its own temp store,
 * client port and cluster port, routes to every other node, and, with `users`, lanekeeper's accounts and per-host
 * permissions on every node (a login works on any node; JetStream lives in the coordinator's account). Resolves
 * once every node answers JetStream requests, i.e. the cluster elected a meta leader.
 */
export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<NatsClusterHandle> {
  const size = opts.size ?? 3;
  const name = opts.name ?? "lk";
  if (!Number.isInteger(size) || size < 1 || size > 9) throw new LauncherError("BAD_OPTIONS", `cluster size ${size} is not 1..9`);
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) throw new LauncherError("BAD_OPTIONS", `cluster name ${JSON.stringify(name)} must match [A-Za-z0-9_-]{1,32}`);
  const clusterPorts: number[] = [];
  for (let i = 0; i < size; i++) clusterPorts.push(await freePort());
  const serverName = (i: number): string => `${name}-n${i + 1}`;
  const nodeConfig = (i: number): string => {
    const routes = clusterPorts.filter((_, j) => j !== i).map((p) => JSON.stringify(`nats-route://127.0.0.1:${p}`));
    return [
      `server_name: ${JSON.stringify(serverName(i))}`,
      "cluster {",
      `  name: ${JSON.stringify(name)}`,
      `  listen: ${JSON.stringify(`127.0.0.1:${clusterPorts[i]}`)}`,
      `  routes: [${routes.join(", ")}]`,
      "}",
      ...(opts.config === undefined ? [] : [opts.config]),
    ].join("\n");
  };
  const started = await Promise.allSettled(
    clusterPorts.map((_, i) => {
      const o: NatsServerOptions = { config: nodeConfig(i), ...(opts.users === undefined ? {} : { users: opts.users }), ...(opts.baseDir === undefined ? {} : { baseDir: opts.baseDir }) };
      return startNatsServer(o);
    }),
  );
  const nodes = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw failed.reason;
  }
  const auth: Partial<ConnectionOptions> = opts.users === undefined ? {} : { user: opts.users.coordinator.user, pass: opts.users.coordinator.password };
  const timeoutMs = opts.startTimeoutMs ?? NATS_START_TIMEOUT_MS;

  const answersJetStream = async (url: string): Promise<boolean> => {
    const nc = await connect({ servers: url, timeout: 2_000, reconnect: false, ...auth });
    try {
      const jsm = await nc.jetstreamManager({ timeout: 2_000 });
      await jsm.getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  };
  const waitForJetStream = async (ms: number = timeoutMs): Promise<void> => {
    for (const n of nodes) {
      if (n.pid === undefined) continue;
      await waitUntil(() => answersJetStream(n.url), { timeoutMs: ms, what: `JetStream on ${n.url} (cluster ${name}) to elect a meta leader` });
    }
  };
  let stopped = false;
  const handle: NatsClusterHandle = {
    urls: nodes.map((n) => n.url),
    nodes,
    serverName,
    nodeIndex: (s) => nodes.findIndex((_, i) => serverName(i) === s),
    async haltAll(h = {}) {
      await Promise.all(nodes.map((n) => n.halt(h)));
    },
    async resumeAll() {
      await Promise.all(nodes.map((n) => n.resume()));
      await waitForJetStream();
    },
    waitForJetStream,
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  try {
    await waitForJetStream();
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}
