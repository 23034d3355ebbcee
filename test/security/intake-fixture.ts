// Shared set-up of the intake security suites: a real Intake with a real file-backed replay store in a temp
// state dir, a trusted key set with a freshly generated coordinator (online) key and offline root key, fresh agent
// keys, a FakeClock, the RecordingExecutor (so every test can assert that no runtime call happened), and the
// agent's real audit chain fed through the same outcome → record mapping as the agent. Keys are generated at
// test time.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AuditLog,
  Backend,
  buildIntent,
  readAuditTail,
  type AuditRecord,
  decodeEnvelope,
  formatTrustFile,
  FakeClock,
  generateSealingKey,
  generateSigningKey,
  KeyStatus,
  LaneMode,
  ResultPayload,
  sealContext,
  sealSecret,
  signIntent,
  TrustedKeySet,
  type IntentAction as WireAction,
  type IntentPayload,
  type LaneSpec,
  type SealingKey,
  type SigningKey,
} from "@lanekeeper/shared";
import { AgentTrust, keySetUpdateHandler } from "../../packages/agent/src/intake/agent-trust.js";
import { Intake, type IntakeOutcome } from "../../packages/agent/src/intake/intake.js";
import { intakeAuditRecord } from "../../packages/agent/src/intake/intake-audit.js";
import type { IntakeControl } from "../../packages/agent/src/intake/intake-policy.js";
import { RecordingExecutor } from "@lanekeeper/testing";
import { ReplayStore } from "../../packages/agent/src/intake/replay-store.js";
import { FileStateStore, type StateStore } from "../../packages/agent/src/intake/state-store.js";

export const HOST = "build01";
export const OTHER_HOST = "build02";
export const SCOPE = "acme/api";
export const POOL = "linux-x64";
export const IMAGE = `ghcr.io/acme/runner@sha256:${"a".repeat(64)}`;

/** Everything allowed, the way a test starts before narrowing one thing. */
export function openControl(over: Partial<IntakeControl> = {}): IntakeControl {
  return {
    enabled: true,
    scopes: [SCOPE],
    pools: [POOL],
    backends: ["systemd", "container"],
    actions: ["create", "drain", "undrain", "start", "stop", "restart", "remove", "hold", "release", "arm"],
    images: [IMAGE],
    maxLanes: 10,
    githubOrigins: ["https://github.com"],
    downloadOrigins: ["https://github.com"],
    ...over,
  };
}

/** A valid systemd lane spec for `laneId` on `host`. */
export function laneSpec(laneId: string, over: Partial<LaneSpec> = {}, host = HOST): LaneSpec {
  return {
    laneId,
    scope: SCOPE,
    pool: POOL,
    backend: Backend.BACKEND_SYSTEMD,
    mode: LaneMode.LANE_MODE_PERSISTENT,
    // Built by hand (not identityLabels) so tests can also make specs with invalid names.
    labels: ["lk-managed", `lk-lane-${laneId}`, `lk-host-${host}`, `lk-pool-${over.pool ?? POOL}`, "linux", "x64"],
    runnerGroup: "",
    githubUrl: "https://github.com/acme/api",
    runnerVersion: "2.330.0",
    image: "",
    limits: undefined,
    runnerDownload: undefined,
    ...over,
  };
}

/** The decoded result envelope an intake answered with. */
export interface Answer {
  bytes: Uint8Array;
  result: ResultPayload;
}

export function decodeAnswer(bytes: Uint8Array): Answer {
  return { bytes, result: ResultPayload.decode(decodeEnvelope("result", bytes).payload) };
}

export interface IntakeFixture {
  dir: string;
  clock: FakeClock;
  coordinatorKey: SigningKey;
  /** The offline root key pinned in the installed trust file: the only key that signs key-set updates. */
  rootKey: SigningKey;
  identityKey: SigningKey;
  sealingKey: SealingKey;
  /** The agent's trust (installed trust file plus applied updates). */
  trust: AgentTrust;
  trustFile: string;
  control: IntakeControl;
  executor: RecordingExecutor;
  replay: ReplayStore;
  intake: Intake;
  outcomes: IntakeOutcome[];
  /** The records the agent's audit chain holds now (written as `lanekeeper-agent run` writes them). */
  auditRecords(): Promise<AuditRecord[]>;
  /** Next sequence `intent()` uses. */
  seq: number;
  /** Build and sign an intent to this host (override any field; `key` signs). */
  intent(action: WireAction, over?: Partial<IntentPayload>, key?: SigningKey): { bytes: Uint8Array; intent: IntentPayload };
  /** A create intent with a registration token sealed with the right context. */
  create(laneId: string, specOver?: Partial<LaneSpec>, over?: Partial<IntentPayload>): { bytes: Uint8Array; intent: IntentPayload };
  /** Deliver to the intake on `subject` (default: this host's intent subject). */
  send(bytes: Uint8Array, subject?: string): Promise<Answer>;
  /** Close the intake and the replay store and open new ones on the same state dir (an agent restart). */
  restart(): Promise<void>;
  /**
   * An agent killed without a clean shutdown: the current intake and replay store are dropped without a flush
   * (whatever they still had pending never reaches the disk), `afterDeath` may change the state dir (what a
   * power cut leaves), then new ones open on the same directory.
   */
  crashAndRestart(afterDeath?: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link makeIntake}. */
export interface FixtureOptions {
  control?: Partial<IntakeControl>;
  /** Do not initialize the replay state (first start counts as lost state). */
  noInit?: boolean;
  /** Use this directory (for restarts across fixtures). */
  dir?: string;
  /**
   * Wrap the replay state store of each (re)start, for fault injection (a crash between write and fsync).
   * @default the real FileStateStore on the fixture's directory
   */
  stateStore?: (file: FileStateStore) => StateStore;
}

export async function makeIntake(opts: FixtureOptions = {}): Promise<IntakeFixture> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "lk-intake-")));
  const clock = new FakeClock();
  const coordinatorKey = generateSigningKey();
  const rootKey = generateSigningKey();
  const identityKey = generateSigningKey();
  const sealingKey = generateSealingKey();
  const initialSet = TrustedKeySet.fromPartial({
      version: 1,
      keys: [
        {
          keyId: coordinatorKey.keyId,
          publicKey: coordinatorKey.publicKey,
          notBeforeMs: clock.now() - 86_400_000,
          notAfterMs: clock.now() + 86_400_000 * 90,
          status: KeyStatus.KEY_STATUS_ACTIVE,
        },
      ],
      rootKeys: [
        { keyId: rootKey.keyId, publicKey: rootKey.publicKey, notBeforeMs: 0, notAfterMs: clock.now() + 86_400_000 * 3650, status: KeyStatus.KEY_STATUS_ACTIVE },
      ],
      issuedAtMs: clock.now() - 1000,
      expiresAtMs: clock.now() + 86_400_000,
    });
  // The installed trust file (out of band at enrollment): version 1, in a directory of its own.
  const trustFile = join(dir, "etc", "trust.json");
  if (opts.dir === undefined) {
    await mkdir(join(dir, "etc"));
    await writeFile(trustFile, formatTrustFile(initialSet), { mode: 0o644 });
  }
  const store = new FileStateStore(dir, HOST);
  if (!opts.noInit && opts.dir === undefined) await store.initialize();
  const control = openControl(opts.control);
  const executor = new RecordingExecutor();
  const outcomes: IntakeOutcome[] = [];
  const auditPath = join(dir, "audit.log");
  let audit = await AuditLog.open(auditPath, { clock, mode: 0o600 });
  let pendingAudit: Promise<unknown> = Promise.resolve();
  const open = async (): Promise<{ replay: ReplayStore; intake: Intake; trust: AgentTrust }> => {
    const file = new FileStateStore(dir, HOST);
    const replay = await ReplayStore.open(opts.stateStore?.(file) ?? file, { hostId: HOST, clock });
    const trust = await AgentTrust.load({ trustFile, stateDir: dir, recordedVersion: replay.keysetVersion, clock });
    await replay.setKeysetVersion(trust.version);
    const intake = new Intake({
      hostId: HOST,
      identityKey,
      sealingKey,
      trust,
      replay,
      executor,
      control: () => fx.control,
      clock,
      onOutcome: (o) => {
        outcomes.push(o);
        const record = intakeAuditRecord(HOST, o);
        if (record !== undefined) pendingAudit = Promise.all([pendingAudit, audit.append(record)]);
      },
      keySetUpdates: keySetUpdateHandler(trust, replay),
    });
    return { replay, intake, trust };
  };

  const first = await open();
  const fx: IntakeFixture = {
    dir,
    clock,
    coordinatorKey,
    rootKey,
    identityKey,
    sealingKey,
    trust: first.trust,
    trustFile,
    control,
    executor,
    replay: first.replay,
    intake: first.intake,
    outcomes,
    async auditRecords() {
      await pendingAudit;
      return readAuditTail(auditPath, 1000);
    },
    seq: 1,
    intent(action, over = {}, key = coordinatorKey) {
      const intent: IntentPayload = {
        ...buildIntent({ audienceHost: HOST, issuer: key, sequence: fx.seq++, action, nowMs: clock.now() }),
        ...over,
      };
      return { bytes: signIntent(intent, key), intent };
    },
    create(laneId, specOver = {}, over = {}) {
      const intentId = over.intentId ?? randomId();
      const registration = sealSecret(
        sealingKey.publicKey,
        Buffer.from("REGTOKEN-test-only"),
        sealContext({ purpose: "registration", hostId: HOST, laneId, intentId }),
      );
      const action: WireAction = { $case: "create", value: { spec: laneSpec(laneId, specOver), registration } };
      // buildIntent validates field caps; the real action goes in afterwards so tests can sign oversized fields.
      const valid: WireAction = { $case: "create", value: { spec: laneSpec(laneId), registration } };
      return fx.intent(valid, { intentId, action, ...over });
    },
    async send(bytes, subject = `lk.v1.intent.${HOST}`) {
      return decodeAnswer(await fx.intake.handle(subject, bytes));
    },
    async restart() {
      await fx.intake.close();
      await fx.replay.close();
      await pendingAudit;
      await audit.close();
      audit = await AuditLog.open(auditPath, { clock, mode: 0o600 });
      const next = await open();
      fx.replay = next.replay;
      fx.intake = next.intake;
      fx.trust = next.trust;
    },
    async crashAndRestart(afterDeath) {
      await pendingAudit;
      await afterDeath?.();
      const next = await open();
      fx.replay = next.replay;
      fx.intake = next.intake;
      fx.trust = next.trust;
    },
    async close() {
      await fx.intake.close();
      await fx.replay.close();
      await pendingAudit.catch(() => undefined);
      await audit.close();
      if (opts.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

function randomId(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}
