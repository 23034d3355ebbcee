import { RejectError, type RejectReason } from "@lanekeeper/shared";

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
