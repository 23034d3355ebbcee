/** The IPC messages between {@link SimWorkers} and its worker processes (`sim-worker.ts`). */
import type { SimEnrollment, SimHostCommon, SimHostSpec } from "./sim-host.js";

/** What one worker reports. */
export interface SimWorkerStats {
  readonly hosts: number;
  /** Lanes with a unit on the simulated hosts. */
  readonly lanes: number;
  /** Lanes whose runner has a session open on the GitHub emulator. */
  readonly online: number;
  /** Intents accepted (the sum of the hosts' replay high-water marks). */
  readonly intents: number;
  /** Runner protocol requests sent to the emulator. */
  readonly runnerRequests: number;
  readonly rssMb: number;
}

/** Parent → worker. */
export type SimWorkerRequest =
  | { readonly type: "init"; readonly common: SimHostCommon; readonly hosts: SimHostSpec[]; readonly githubWebUrl: string }
  | { readonly type: "start"; readonly trustFile: string }
  | { readonly type: "stats" }
  | { readonly type: "stop" };

/** Worker → parent. */
export type SimWorkerReply =
  | { readonly type: "enrolled"; readonly enrollments: SimEnrollment[] }
  | { readonly type: "started"; readonly stats: SimWorkerStats }
  | { readonly type: "stats"; readonly stats: SimWorkerStats }
  | { readonly type: "stopped" }
  | { readonly type: "error"; readonly message: string };
