import { keyIdOf, RAW_PUBLIC_KEY_BYTES, validateHostId } from "@lanekeeper/shared";

/** The public keys of one enrolled host, from its enrollment bundle (policy `hosts.<hostId>.enrolled`). */
export interface EnrolledHost {
  readonly hostId: string;
  /** Raw 32-byte Ed25519 identity key: verifies the host's results and inventories. */
  readonly identityKey: Uint8Array;
  /** Raw 32-byte X25519 key: secrets for the host are sealed to it. */
  readonly sealingKey: Uint8Array;
}

/**
 * Which hosts the coordinator has enrolled and their keys (the NodeRestriction analogue: a key speaks only for
 * the host it was enrolled for). The dispatcher, result verifier and inventory collector read it.
 */
export interface HostRegistry {
  /** The enrolled host `hostId`, or undefined. */
  host(hostId: string): EnrolledHost | undefined;
  /** The host whose identity key has id `keyId` (hex SHA-256 of the raw key), or undefined. */
  hostForKey(keyId: string): EnrolledHost | undefined;
}

/** A {@link HostRegistry} over a fixed list (built from the policy, or by tests). */
export class StaticHostRegistry implements HostRegistry {
  private byHost = new Map<string, EnrolledHost>();
  private byKey = new Map<string, EnrolledHost>();

  /** @throws Error when a host id is invalid, a key is not 32 bytes, or a host or key appears twice */
  constructor(hosts: Iterable<EnrolledHost>) {
    this.replace(hosts);
  }

  /**
   * Switch to another list of hosts at once (`serve`'s policy reload enrolls and removes hosts); on a throw the
   * registry is unchanged.
   * @throws Error as the constructor
   */
  replace(hosts: Iterable<EnrolledHost>): void {
    const byHost = new Map<string, EnrolledHost>();
    const byKey = new Map<string, EnrolledHost>();
    for (const h of hosts) {
      validateHostId(h.hostId);
      if (h.identityKey.length !== RAW_PUBLIC_KEY_BYTES || h.sealingKey.length !== RAW_PUBLIC_KEY_BYTES) {
        throw new Error(`host ${h.hostId}: keys must be ${RAW_PUBLIC_KEY_BYTES} raw bytes`);
      }
      const keyId = keyIdOf(h.identityKey);
      if (byHost.has(h.hostId)) throw new Error(`host ${h.hostId} is enrolled twice`);
      // One key must never speak for two hosts, or host A could report as host B.
      if (byKey.has(keyId)) throw new Error(`host ${h.hostId} reuses the identity key of another host`);
      const frozen = Object.freeze({
        hostId: h.hostId,
        identityKey: Buffer.from(h.identityKey),
        sealingKey: Buffer.from(h.sealingKey),
      });
      byHost.set(h.hostId, frozen);
      byKey.set(keyId, frozen);
    }
    this.byHost = byHost;
    this.byKey = byKey;
  }

  host(hostId: string): EnrolledHost | undefined {
    return this.byHost.get(hostId);
  }

  hostForKey(keyId: string): EnrolledHost | undefined {
    return this.byKey.get(keyId);
  }
}
