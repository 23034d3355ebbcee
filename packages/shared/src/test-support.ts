// Helpers for this package's own tests (not exported from the package).
import { RejectError, type RejectReason } from "./errors.js";

/** The `RejectReason` that `fn` throws, or "none" when it returns. Any other exception fails the test. */
export function reasonOf(fn: () => unknown): RejectReason | "none" {
  try {
    fn();
    return "none";
  } catch (err) {
    if (err instanceof RejectError) return err.reason;
    throw err;
  }
}
