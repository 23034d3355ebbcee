const REDACTED = "[REDACTED]";

/**
 * A secret string (registration token, remove token, JIT config, App private key) that cannot leak by
 * accident: `JSON.stringify`, template strings, `util.inspect` and pino all see `[REDACTED]`. Only
 * {@link RedactedSecret.reveal} returns the value, and only the sealing step should call it.
 */
export class RedactedSecret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret itself. Call it only to seal it for an agent or to hand it to an auth library. */
  reveal(): string {
    return this.#value;
  }

  /** Length of the secret, useful for sanity checks without revealing it. */
  get length(): number {
    return this.#value.length;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `RedactedSecret(${REDACTED})`;
  }
}
