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
      readonly source: "operation";
      /** The operation the record names as in flight. */
      readonly operationId: string;
      /** Its lease: `gone` means no coordinator runs it any more (the process died or was cut off). */
      readonly lease: "live" | "gone";
    }
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
    }
  | {
      /** The demand a scaling group's decision rests on (docs/scaling.md). */
      readonly source: "demand";
      readonly scope: string;
      readonly pool: string;
      /** Whether demand for the scope is known (a snapshot, and a reconciliation or a webhook for the scope). */
      readonly known: boolean;
      /** Queued jobs no lane has taken, counted toward `wanted` (ids, at most 50 listed). */
      readonly queuedJobIds: readonly number[];
      readonly queued: number;
      /** Queued jobs presumed taken by a busy lane whose job the demand does not show yet (not counted twice). */
      readonly takenJobIds: readonly number[];
      /** Jobs in progress on this group's lanes (ids, at most 50 listed). */
      readonly runningJobIds: readonly number[];
      readonly busy: number;
      readonly idle: number;
      readonly starting: number;
      /** Idle lanes kept ready (`idle`, raised by schedules in force). */
      readonly idleTarget: number;
      readonly min: number;
      readonly max: number;
      readonly wanted: number;
    }
  | {
      /** A schedule window in force that raises the group's floor. */
      readonly source: "schedule";
      readonly name: string;
      readonly cron: string;
      readonly timezone: string;
      readonly min: number;
      readonly idle: number | null;
      readonly startMs: number;
      readonly endMs: number;
    }
  | {
      /**
       * A pool's upgrade window (`pools.<pool>.upgrade.window`) at the plan's instant: open (an upgrade may start) or
       * closed until `opensAtMs`.
       */
      readonly source: "upgrade-window";
      readonly pool: string;
      readonly name: string;
      readonly cron: string;
      readonly duration: string;
      readonly timezone: string;
      readonly open: boolean;
      /** While open: this opening's start and (exclusive) end. */
      readonly startMs: number | null;
      readonly endMs: number | null;
      /** While closed: the next opening (null when the cron fires no more), and that instant in the window's zone. */
      readonly opensAtMs: number | null;
      readonly opensAt: string | null;
    }
  | {
      /** How long a lane has been idle, against the group's `scaleDownAfter`. */
      readonly source: "idle";
      readonly laneId: string;
      readonly idleSinceMs: number;
      readonly idleForMs: number;
      readonly scaleDownAfterMs: number;
    };
