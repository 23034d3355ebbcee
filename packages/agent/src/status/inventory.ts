/**
 * The agent's view of its host, as the inventory publisher and the status socket need it: managed lanes (state,
 * health, job evidence), unmanaged runners (units, containers, `.runner` directories) and capabilities. Building
 * it never mutates anything.
 */
import { MAX_INVENTORY_UNMANAGED, type Capabilities, type UnmanagedRunner } from "@lanekeeper/shared";
import { AGENT_VERSION } from "../agent-version.js";
import type { AgentLog } from "../audit-sink.js";
import { silentLog } from "../audit-sink.js";
import { gatherCapabilities } from "./capabilities.js";
import { allowlistOf, type IntakeControl } from "../intake/intake-policy.js";
import type { InventoryContent } from "../intake/inventory-publisher.js";
import type { LaneManager } from "../lanes/lane-manager.js";
import { CAPABILITIES_REFRESH_MS } from "../limits.js";
import { scanRunnerRoots } from "../runtimes/runner-root-scan.js";

/** Options of {@link InventoryBuilder}. */
export interface InventoryBuilderOptions {
  readonly manager: LaneManager;
  /** Directories searched for hand-made `.runner` directories. */
  readonly runnerRoots: readonly string[];
  /** Never searched (the agent's own lanes). */
  readonly laneRoot: string;
  /** Disk whose free space is reported. */
  readonly diskPath?: string;
  /**
   * The config's `control` (the allowlist the intake enforces), reported in every inventory. The daemon always
   * passes it; without it the coordinator treats the allowlist as unknown and relies on the agent refusing.
   */
  readonly control?: IntakeControl;
  readonly log?: AgentLog;
  /**
   * Where capabilities come from. A simulation of many hosts in one process hands in one shared answer instead of
   * running `systeminformation` (which spawns commands) once per host. @default {@link gatherCapabilities}
   */
  readonly capabilities?: () => Promise<Capabilities>;
}

/** Builds inventories; keeps the last one for the status socket. */
export class InventoryBuilder {
  private capabilities: Capabilities | undefined;
  private capabilitiesAt = 0;
  private latest: InventoryContent | undefined;
  private inFlight: { readonly startedAtMs: number; readonly build: Promise<InventoryContent> } | undefined;
  private readonly log: AgentLog;

  constructor(private readonly opts: InventoryBuilderOptions) {
    this.log = opts.log ?? silentLog;
  }

  /** The last inventory built, if any. */
  get last(): InventoryContent | undefined {
    return this.latest;
  }

  /** Capabilities, refreshed every few minutes. */
  async capabilitiesNow(): Promise<Capabilities> {
    if (!this.capabilities || Date.now() - this.capabilitiesAt > CAPABILITIES_REFRESH_MS) {
      if (this.opts.capabilities) this.capabilities = await this.opts.capabilities();
      else {
        const engine = await this.detectEngine();
        this.capabilities = await gatherCapabilities({ containerEngine: engine, ...(this.opts.diskPath ? { diskPath: this.opts.diskPath } : {}) });
      }
      this.capabilitiesAt = Date.now();
    }
    return this.capabilities;
  }

  private async detectEngine(): Promise<string> {
    const rt = this.opts.manager.runtimes.container;
    return rt?.engineName ? rt.engineName().catch(() => "") : "";
  }

  /**
   * An inventory whose facts were read at most `maxAgeMs` ago. The signed publisher, the status socket and the
   * daemon's own loop all ask for it, and a build costs a `/proc` and cgroup scan per lane, so a recent enough
   * build (finished or in progress) is shared. One that began earlier is never handed out as newer: with
   * `maxAgeMs` 0 the caller gets a build that began after it asked (after any build in progress).
   */
  build(maxAgeMs = 1000): Promise<InventoryContent> {
    const askedAt = Date.now();
    if (this.latest && askedAt - this.latest.takenAtMs < maxAgeMs) return Promise.resolve(this.latest);
    if (this.inFlight && askedAt - this.inFlight.startedAtMs < maxAgeMs) return this.inFlight.build;
    const before = this.inFlight?.build.catch(() => undefined);
    const build = (async () => {
      await before; // one build at a time
      return this.buildNow();
    })();
    const entry = { startedAtMs: askedAt, build };
    this.inFlight = entry;
    void build
      .finally(() => {
        if (this.inFlight === entry) this.inFlight = undefined;
      })
      .catch(() => undefined);
    return build;
  }

  private async buildNow(): Promise<InventoryContent> {
    const takenAtMs = Date.now();
    const lanes = await this.opts.manager.list({ evidence: true });
    const unmanaged: UnmanagedRunner[] = [];
    for (const rt of Object.values(this.opts.manager.runtimes)) {
      try {
        unmanaged.push(...(await rt.list()).unmanaged);
      } catch (err) {
        this.log.warn({ backend: rt.backend, err: err instanceof Error ? err.message : String(err) }, "inventory: cannot list runtime");
      }
    }
    unmanaged.push(...(await scanRunnerRoots(this.opts.runnerRoots, [this.opts.laneRoot])));
    if (unmanaged.length > MAX_INVENTORY_UNMANAGED) {
      // The coordinator refuses a snapshot listing more; report the first ones rather than none at all.
      this.log.warn({ found: unmanaged.length, reported: MAX_INVENTORY_UNMANAGED }, "inventory: too many unmanaged runners, reporting the first");
      unmanaged.length = MAX_INVENTORY_UNMANAGED;
    }
    const capabilities = await this.capabilitiesNow().catch(() => undefined);
    this.latest = {
      lanes,
      unmanaged,
      ...(capabilities ? { capabilities } : {}),
      ...(this.opts.control ? { allowlist: allowlistOf(this.opts.control) } : {}),
      agentVersion: AGENT_VERSION,
      takenAtMs,
    };
    return this.latest;
  }
}
