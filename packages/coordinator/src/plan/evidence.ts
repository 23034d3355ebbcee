/**
 * One observation an action rests on, small and JSON-serialisable, so `plan --json` and the audit record
 * show exactly what the planner saw.
 */
export type Evidence =
  | {
      readonly source: "github";
      readonly scope: string;
      readonly runnerId: number;
      readonly runnerName: string;
      readonly status: string;
      readonly busy: boolean;
      readonly labels: readonly string[];
    }
  | {
      readonly source: "host";
      readonly hostId: string;
      readonly laneId: string;
      readonly state: string;
      readonly health: string;
      readonly jobRunning: boolean;
      readonly runnerId: number;
      readonly draining: boolean;
      readonly held: boolean;
      readonly stateSinceMs: number;
    }
  | {
      readonly source: "record";
      readonly laneId: string;
      readonly state: string;
      readonly scope: string;
      readonly pool: string;
      readonly hostId: string;
      readonly runnerId: number | null;
      readonly revision: number;
      readonly createdAtMs: number;
      readonly orphanMarkedAtMs: number | null;
    }
  | { readonly source: "policy"; readonly path: string; readonly value: string | number | boolean }
  | {
      readonly source: "absent";
      readonly what: "registration" | "host-lane" | "record";
      /** Where it was looked for: a scope, a host id, or `lane store`. */
      readonly where: string;
    }
  | {
      readonly source: "placement";
      readonly hostId: string;
      /** Lanes on the host before this one. */
      readonly hostLanes: number;
      readonly capacity: number;
      /** Lanes of the same scope and pool on the host before this one. */
      readonly groupLanesOnHost: number;
      readonly inventoryKnown: boolean;
    };
