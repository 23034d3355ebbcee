// Shared set-up of the envelope-level security suites: a coordinator key (generated at test time) trusted by a
// version-1 key set, a FakeClock, and helpers to build, sign and verify intents and to read rejection reasons.
import { sign } from "node:crypto";
import {
  buildIntent,
  buildKeySet,
  encodeIntent,
  FakeClock,
  generateSigningKey,
  IntentPayload,
  pae,
  RejectError,
  SignedEnvelope,
  TrustedKeyStore,
  verifyIntent,
  type IntentAction,
  type KeySetMember,
  type RejectReason,
  type SigningKey,
  type VerifiedIntent,
} from "@lanekeeper/shared";

export const HOST = "build01";
export const T0 = 1_800_000_000_000;

/** A fresh world: coordinator key, trusted store, clock. */
export function world(extraMembers: KeySetMember[] = []): {
  coordinator: SigningKey;
  store: TrustedKeyStore;
  clock: FakeClock;
} {
  const coordinator = generateSigningKey();
  const clock = new FakeClock(T0);
  const store = new TrustedKeyStore(buildKeySet({ version: 1, issuedAtMs: T0 - 1000, members: [{ key: coordinator }, ...extraMembers] }));
  return { coordinator, store, clock };
}

export const restartAction: IntentAction = { $case: "restart", value: { laneId: "l1", force: false } };

/** An intent for HOST issued at `nowMs` (default T0), with field overrides applied after building. */
export function intentFor(issuer: SigningKey, overrides: Partial<IntentPayload> = {}, nowMs = T0): IntentPayload {
  return { ...buildIntent({ audienceHost: HOST, issuer, sequence: 1, action: restartAction, nowMs }), ...overrides };
}

/** Sign arbitrary payload bytes as an intent envelope (lets tests sign payloads `signIntent` would refuse). */
export function signRawIntent(payload: Uint8Array, key: SigningKey, envelope: Partial<SignedEnvelope> = {}): Uint8Array {
  return SignedEnvelope.encode({
    version: 1,
    keyId: key.keyId,
    payload: Buffer.from(payload),
    signature: sign(null, pae("intent", payload), key.privateKey),
    ...envelope,
  }).finish();
}

/** Sign an intent without any builder-side checks. */
export function signUnchecked(intent: IntentPayload, key: SigningKey): Uint8Array {
  return signRawIntent(encodeIntent(intent), key);
}

/** Verify for HOST on HOST's subject. */
export function verify(bytes: Uint8Array, w: { store: TrustedKeyStore; clock: FakeClock }, extra: { hostId?: string; subjectHost?: string; skewMs?: number; maxTtlMs?: number } = {}): VerifiedIntent {
  return verifyIntent(bytes, { hostId: HOST, subjectHost: HOST, keys: w.store, clock: w.clock, ...extra });
}

/** The RejectReason `fn` throws, or "accepted". Any other exception fails the test. */
export function reasonOf(fn: () => unknown): RejectReason | "accepted" {
  try {
    fn();
    return "accepted";
  } catch (err) {
    if (err instanceof RejectError) return err.reason;
    throw err;
  }
}

/** Decode, change and re-encode an envelope (unsigned fields only). */
export function rewrapEnvelope(bytes: Uint8Array, change: Partial<SignedEnvelope>): Uint8Array {
  return SignedEnvelope.encode({ ...SignedEnvelope.decode(bytes), ...change }).finish();
}

/** Protobuf wire helpers for hand-made malformed encodings. */
export const wire = {
  varint(n: number | bigint): Buffer {
    let v = BigInt(n);
    const out: number[] = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) b |= 0x80;
      out.push(b);
    } while (v > 0n);
    return Buffer.from(out);
  },
  tag(field: number, wireType: number): Buffer {
    return wire.varint((field << 3) | wireType);
  },
  string(field: number, s: string | Buffer): Buffer {
    const b = typeof s === "string" ? Buffer.from(s, "utf8") : s;
    return Buffer.concat([wire.tag(field, 2), wire.varint(b.length), b]);
  },
  uint(field: number, n: number | bigint): Buffer {
    return Buffer.concat([wire.tag(field, 0), wire.varint(n)]);
  },
};
