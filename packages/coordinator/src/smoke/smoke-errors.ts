import { LanekeeperError } from "@lanekeeper/shared";
import type { CoordinatorErrorCode } from "../error-codes.js";

/** Why `lanekeeper smoke` refused to start. Nothing was changed when one of these is thrown. */
export type SmokeRefusalCode =
  | "SMOKE_OPTIONS_INVALID"
  | "SMOKE_SCOPE_NOT_OPTED_IN"
  | "SMOKE_HOST_NOT_OPTED_IN"
  | "SMOKE_HOST_NOT_ALLOWED"
  | "SMOKE_HOST_FULL"
  | "SMOKE_HOST_UNHEARD";

/** `lanekeeper smoke` refused to start: a stable code, what is missing, and the hint naming what to set. */
export class SmokeRefusedError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(code: SmokeRefusalCode, message: string, hint: string) {
    super(code, message, { hint });
  }
}

/** The operator interrupted the smoke run (SIGINT); thrown out of the waits it was in. */
export class SmokeInterruptedError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message = "interrupted (SIGINT)") {
    super("SMOKE_INTERRUPTED", message);
  }
}

/** A sleep that ends early, with {@link SmokeInterruptedError}, when `signal` aborts. */
export function interruptibleSleep(signal: AbortSignal | undefined): (ms: number) => Promise<void> {
  return (ms) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new SmokeInterruptedError());
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(new SmokeInterruptedError());
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
}
