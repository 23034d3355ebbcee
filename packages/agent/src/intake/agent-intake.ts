import { readFile } from "node:fs/promises";
import { connect, credsAuthenticator, DebugEvents, Events, type ConnectionOptions, type NatsConnection } from "nats";
import { childLogger, intentSubject, RejectError, RejectReason, type AgentConfig, type Logger, type TrustedKeyStore } from "@lanekeeper/shared";
import type { AgentDaemon } from "../agent-daemon.js";
import { AgentTrust, keySetUpdateHandler, TrustError } from "./agent-trust.js";
import { Intake, type IntakeOutcome, type KeySource } from "./intake.js";
import { intakeAuditRecord } from "./intake-audit.js";
import { InventoryPublisher, resolveInventoryPublisherOptions } from "./inventory-publisher.js";
import { LaneManagerExecutor } from "./lane-manager-executor.js";
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
  /** `connecting`, `connected`, `reconnecting` or `disconnected` (for the status report). */
  natsState(): string;
  /** The newest intent outcomes, oldest first. */
  recentOutcomes(): readonly IntakeOutcome[];
  /** Stop answering intents and publishing inventory, flush the replay state, close NATS. */
  stop(): Promise<void>;
}

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
    servers: config.nats.url,
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
    try {
      trust = await AgentTrust.load({ trustFile: config.trustFile, stateDir: config.stateDir, recordedVersion: replay.keysetVersion, clock: { now: () => Date.now() } });
      await replay.setKeysetVersion(trust.version);
    } catch (err) {
      if (!(err instanceof TrustError)) throw err;
      // Fail closed but stay up: status and inventory keep working, every intent is refused (UNKNOWN_KEY).
      log.error({ alert: err.code, err: err.message }, "no usable trusted key set: refusing every intent until the trust file is fixed");
    }
    const keySource = trust ?? noTrust(err0(config.trustFile));
    const natsOptions = { ...(await natsOptionsFor(config)), ...opts.nats };
    let state = "connecting";
    let stopped = false;
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
      control: config.control,
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
    const connected = (async () => {
      const c = await connect(natsOptions);
      if (stopped) {
        await c.close();
        return;
      }
      nc = c;
      state = "connected";
      void (async () => {
        for await (const s of c.status()) {
          if (s.type === Events.Disconnect) state = "disconnected";
          else if (s.type === DebugEvents.Reconnecting) state = "reconnecting";
          else if (s.type === Events.Reconnect) state = "connected";
        }
      })();
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
      natsState: () => state,
      recentOutcomes: () => [...outcomes],
      async stop() {
        stopped = true;
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
