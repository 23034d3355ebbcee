/** Options of `lanekeeper apply`, for a live apply and for the apply of a saved plan alike. */
export interface ApplyCommandOptions {
  readonly policy?: string;
  readonly json?: boolean;
  /** Change nothing: print the plan and record it as `dry-run` audit records. */
  readonly dryRun?: boolean;
  /** Do not ask for confirmation (required when stdin is not a terminal). */
  readonly yes?: boolean;
  /** No progress lines on stderr. */
  readonly quiet?: boolean;
  readonly maxRemovals?: number;
  readonly maxCreates?: number;
  readonly rateLimitReserve?: number;
  /** Actions carried out at the same time (overrides `coordinator.applyConcurrency`). */
  readonly concurrency?: number;
  /** How long to wait for fresh agent inventories before planning. */
  readonly inventoryWait?: number;
  /** The whole command's deadline in ms (`--timeout`). */
  readonly timeout?: number;
}
