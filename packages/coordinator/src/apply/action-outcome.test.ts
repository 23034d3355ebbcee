// The code an action's failure is reported and audited with: a raw NATS "no answer now" (an intent or a write that
// timed out or got 503 while the cluster was away) says NATS_UNAVAILABLE, not INTERNAL, so an operator looks at NATS.
import { LanekeeperError } from "@lanekeeper/shared";
import { describe, expect, it } from "vitest";
import { errCode } from "./action-outcome.js";

function natsError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

describe("errCode", () => {
  it("names a NATS timeout or 503 NATS_UNAVAILABLE", () => {
    expect(errCode(natsError("TIMEOUT"))).toBe("NATS_UNAVAILABLE");
    expect(errCode(natsError("503"))).toBe("NATS_UNAVAILABLE");
  });

  it("keeps a lanekeeper error's own code, and INTERNAL for anything else", () => {
    expect(errCode(new LanekeeperError("FENCING_TOKEN_STALE", "stale"))).toBe("FENCING_TOKEN_STALE");
    expect(errCode(natsError("PERMISSIONS_VIOLATION"))).toBe("INTERNAL");
    expect(errCode(new TypeError("x is undefined"))).toBe("INTERNAL");
  });
});
