import { readFile } from "node:fs/promises";
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "nats";
import {
  childLogger,
  intentSubject,
  RejectError,
  RejectReason,
  type AgentConfig,
  type Logger,
  type NatsConnectionStatus,
  type TrustedKeyStore,
  type TrustStatus,
} from "@lanekeeper/shared";
import type { AgentDaemon } from "../agent-daemon.js";
import { AgentTrust, keySetUpdateHandler, TrustError } from "./agent-trust.js";
import { Intake, type IntakeOutcome, type KeySource } from "./intake.js";
import { intakeControlOf } from "./intake-policy.js";
import { intakeAuditRecord } from "./intake-audit.js";
import { InventoryPublisher, resolveInventoryPublisherOptions } from "./inventory-publisher.js";
import { LaneManagerExecutor } from "./lane-manager-executor.js";
import { NatsMonitor } from "./nats-monitor.js";
import { ReplayStore } from "./replay-store.js";
import { FileStateStore } from "./state-store.js";

/** Most recent intent outcomes kept for `lanekeeper-agent status`. */
const RECENT_OUTCOMES = 50;

/** The running NATS side of an agent. */
export interface AgentIntakeHandle {
  readonly intake: Intake;
  readonly replay: ReplayStore;
  /** Undefined when the trust file is missing or rolled back (every intent is then refused). */
  readonly trust: AgentTrust | undefined;
  /** The inventory publisher, once NATS is connected. */
  inventory(): InventoryPublisher | undefined;
  /** Resolves once connected to NATS and listening (it keeps trying while the server is unreachable). */
  readonly connected: Promise<void>;
  /** `connecting`, `connected`, `reconnecting`, `disconnected` or `closed` (for the status report). */
  natsState(): string;
  /** The connection: state, server, since when, the newest problem, reconnects (for the status report). */
  natsStatus(): NatsConnectionStatus;
  /** Whether a trusted key set is loaded, from which file, and why not (for the status report). */
  trustStatus(): TrustStatus;
  /** The newest intent outcomes, oldest first. */
  recentOutcomes(): readonly IntakeOutcome[];
  /** Stop answering intents and publishing inventory, flush the replay state, close NATS. */
  stop(): Promise<void>;
}

/** Pause between first-connection attempts (nats.js' own reconnect wait). */
const CONNECT_RETRY_MS = 2000;

/** Options of {@link startAgentIntake}. */
export interface StartAgentIntakeOptions {
  /** The started agent: its config, keys, lane manager, inventory builder and the single-instance lock it runs under. */
  daemon: Pick<AgentDaemon, "config" | "keys" | "manager" | "inventory" | "lock" | "audit">;
  log: Logger;
  /** Extra NATS connection options (tests). */
  nats?: Partial<ConnectionOptions>;
}

/** NATS connection options from the agent config (user/password or a creds file, optional CA). */
export async function natsOptionsFor(config: AgentConfig): Promise<ConnectionOptions> {
  const opts: ConnectionOptions = {
    servers: config.nats.servers,
    name: `lanekeeper-agent ${config.hostId}`,
    // Keep trying: the agent is useful (status, health) while NATS is down, and must come back by itself.
    waitOnFirstConnect: true,
    reconnect: true,
    maxReconnectAttempts: -1,
  };
  if (config.nats.user !== undefined) opts.user = config.nats.user;
  if (config.nats.password !== undefined) opts.pass = config.nats.password;
  if (config.nats.credsFile !== undefined) opts.authenticator = credsAuthenticator(await readFile(config.nats.credsFile));
  if (config.nats.tlsCaFile !== undefined) opts.tls = { caFile: config.nats.tlsCaFile };
  return opts;
}

/**
 * Connect the started agent to NATS: the replay state (fail closed when lost), the trusted key set (installed
 * trust file plus applied updates, refusing a rollback), the {@link Intake} on `lk.v1.intent.<hostId>` driving
 * the real {@link LaneManagerExecutor}, and the signed {@link InventoryPublisher} on `lk.v1.inventory.<hostId>`
 * fed by the daemon's inventory builder. `lanekeeper-agent run` calls this after `AgentDaemon.start`.
 */
export async function startAgentIntake(opts: StartAgentIntakeOptions): Promise<AgentIntakeHandle> {
  const { config, keys, manager, inventory: builder, lock, audit } = opts.daemon;
  const log = childLogger(opts.log, { component: "intake", hostId: config.hostId });
  // The replay state lives in the state directory the daemon's lock covers: no second lock.
  const store = new FileStateStore(config.stateDir, config.hostId, { instanceLock: lock });
  await store.lock();
  const cleanup: (() => Promise<unknown>)[] = [() => store.unlock()];
  try {
    const replay = await ReplayStore.open(store, { hostId: config.hostId, clock: { now: () => Date.now() }, log });
    cleanup.unshift(() => replay.close());
    let trust: AgentTrust | undefined;
    let trustError = "";
    try {
      trust = await AgentTrust.load({ trustFile: config.trustFile, stateDir: config.stateDir, recordedVersion: replay.keysetVersion, clock: { now: () => Date.now() } });
      await replay.setKeysetVersion(trust.version);
    } catch (err) {
      if (!(err instanceof TrustError)) throw err;
      trustError = err.message;
      // Fail closed but stay up: status and inventory keep working, every intent is refused (UNKNOWN_KEY).
      log.error({ alert: err.code, err: err.message }, "no usable trusted key set: refusing every intent until the trust file is fixed");
    }
    const keySource = trust ?? noTrust(err0(config.trustFile));
    const natsOptions = { ...(await natsOptionsFor(config)), ...opts.nats };
    const monitor = new NatsMonitor(config.nats.url, log);
    let stopped = false;
    let wake: () => void = () => undefined;
    let nc: NatsConnection | undefined;
    let inventory: InventoryPublisher | undefined;
    const outcomes: IntakeOutcome[] = [];
    const intake = new Intake({
      hostId: config.hostId,
      identityKey: keys.identity,
      sealingKey: keys.sealing,
      trust: keySource,
      replay,
      executor: new LaneManagerExecutor(manager),
      control: intakeControlOf(config),
      log,
      onOutcome: (o) => {
        outcomes.push(o);
        if (outcomes.length > RECENT_OUTCOMES) outcomes.shift();
        log.info(
          { intentId: o.intentId, digest: o.digest, sequence: o.sequence, action: o.action, laneId: o.laneId, status: o.status, reasonCode: o.reasonCode, duplicate: o.duplicate },
          "intent",
        );
        const record = intakeAuditRecord(config.hostId, o);
        if (record !== undefined) {
          audit.append(record).catch((err: unknown) => log.error({ intentId: o.intentId, err: err instanceof Error ? err.message : String(err) }, "audit append failed"));
        }
      },
      onChange: () => inventory?.notifyChange(),
      ...(trust === undefined ? {} : { keySetUpdates: keySetUpdateHandler(trust, replay) }),
    });
    // Connect in the background: `run` must not wait for NATS (status and health work without it), and
    // nats.js keeps retrying until the server is reachable.
    // The first connection is dialled here rather than with nats.js' waitOnFirstConnect, which retries without
    // saying why: status and the log must show why the agent cannot reach NATS (refused, auth, TLS).
    const dial = async (): Promise<NatsConnection | undefined> => {
      for (;;) {
        if (stopped) return undefined;
        try {
          return await connect({ ...natsOptions, waitOnFirstConnect: false });
        } catch (err) {
          if (stopped) return undefined;
          monitor.connectFailed(err);
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, CONNECT_RETRY_MS).unref();
          });
        }
      }
    };
    const connected = (async () => {
      const c = await dial();
      if (c === undefined) return;
      if (stopped) {
        await c.close();
        return;
      }
      nc = c;
      monitor.connected(c.getServer());
      void (async () => {
        for await (const s of c.status()) monitor.onStatus(s);
      })();
      void c.closed().then((err) => monitor.closed(stopped ? undefined : err));
      inventory = new InventoryPublisher(
        c,
        resolveInventoryPublisherOptions(
          {
            hostId: config.hostId,
            identityKey: keys.identity,
            provider: () => builder.build(0),
            controlEnabled: () => config.control.enabled,
            intentHwm: () => replay.hwm,
            keysetVersion: () => trust?.version ?? 0,
            auditHead: () => audit.head,
            log,
          },
          config,
        ),
      );
      intake.listen(c);
      await c.flush();
      inventory.start();
      log.info({ subject: intentSubject(config.hostId), hwm: replay.hwm, keysetVersion: trust?.version ?? 0, floor: replay.floor }, "intake listening");
    })();
    connected.catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, "cannot connect to NATS"));
    return {
      intake,
      replay,
      trust,
      inventory: () => inventory,
      connected,
      natsState: () => monitor.current,
      natsStatus: () => monitor.snapshot(),
      trustStatus: () => ({ loaded: trust !== undefined, trustFile: config.trustFile, error: trustError }),
      recentOutcomes: () => [...outcomes],
      async stop() {
        stopped = true;
        wake();
        await inventory?.stop();
        await intake.close();
        await nc?.close().catch(() => undefined);
        for (const c of cleanup) await c().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const c of cleanup) await c().catch(() => undefined);
    throw err;
  }
}

function err0(trustFile: string): string {
  return `no usable trusted key set (${trustFile}); install the coordinator's trust file and restart the agent`;
}

/** A key source that refuses every key: used when the trust file is missing, invalid or rolled back. */
function noTrust(message: string): KeySource {
  return {
    get keys(): TrustedKeyStore {
      throw new RejectError(RejectReason.UNKNOWN_KEY, message);
    },
  };
}
