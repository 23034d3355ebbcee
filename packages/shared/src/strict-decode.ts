/**
 * Strict protobuf decoding. ts-proto's decoders skip unknown fields, skip fields with an unexpected wire type,
 * keep the last of duplicated fields, accept non-minimal varints and replace invalid UTF-8. We accept a message
 * only when re-encoding the decoded value gives back exactly the input bytes: the encoding is then the canonical
 * one every lanekeeper signer produces (ts-proto writes fields in number order, omits defaults, and none of our
 * messages has maps or packed fields), and what we act on is provably what the signer encoded. A peer built from
 * a newer proto with extra fields is refused rather than half-understood; both sides ship from one repository.
 */
import { RejectError, type RejectReason } from "./errors.js";

/** The part of a generated message codec strict decoding needs. */
export interface MessageCodec<T> {
  decode(input: Uint8Array): T;
  encode(message: T): { finish(): Uint8Array };
}

/** Whether a re-encoding equals the original bytes. */
export function isCanonical(reencoded: Uint8Array, original: Uint8Array): boolean {
  return Buffer.from(reencoded.buffer, reencoded.byteOffset, reencoded.byteLength).equals(
    Buffer.from(original.buffer, original.byteOffset, original.byteLength),
  );
}

/** Decode `bytes` as `codec`, throwing `RejectError(reason)` unless the encoding is exactly canonical. */
export function decodeStrict<T>(codec: MessageCodec<T>, bytes: Uint8Array, what: string, reason: RejectReason): T {
  let message: T;
  try {
    message = codec.decode(bytes);
  } catch (cause) {
    throw new RejectError(reason, `${what} cannot be decoded: ${(cause as Error).message}`, { cause });
  }
  let again: Uint8Array;
  try {
    again = codec.encode(message).finish();
  } catch (cause) {
    throw new RejectError(reason, `${what} cannot be re-encoded`, { cause });
  }
  if (!isCanonical(again, bytes)) {
    throw new RejectError(
      reason,
      `${what} is not canonically encoded (unknown, duplicated or mistyped field, non-minimal varint, default value written, or invalid UTF-8)`,
    );
  }
  return message;
}
