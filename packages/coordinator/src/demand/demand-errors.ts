import { LanekeeperError } from "@lanekeeper/shared";
import type { CoordinatorErrorCode } from "../error-codes.js";

/** The job store (JetStream KV) could not be read or written. */
export class JobStoreUnavailableError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("JOB_STORE_UNAVAILABLE", message, options);
  }
}

/** The webhook endpoint cannot start: its secret is not in the environment, or its address cannot be bound. */
export class WebhookConfigError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("WEBHOOK_CONFIG", message, options);
  }
}
