/** Defaults and bounds of the demand sources: the webhook receiver, the job store and the REST reconciliation. */

/** JetStream KV bucket of workflow jobs (key `job.<id>`, value a `DemandJob` as JSON). */
export const JOBS_BUCKET = "lk_jobs";
/** JetStream KV bucket of webhook delivery ids already handled (entries expire after {@link DELIVERY_TTL_MS}). */
export const DELIVERIES_BUCKET = "lk_webhook_deliveries";
/**
 * How long a delivery id is remembered. GitHub lets an operator redeliver a delivery of the past 3 days, with the
 * same `X-GitHub-Delivery`, so a redelivery inside that window is refused as a duplicate.
 */
export const DELIVERY_TTL_MS = 3 * 86_400_000;
/** Per scope, how often the REST reconciliation lists queued and in-progress runs. */
export const DEFAULT_DEMAND_REST_INTERVAL_MS = 30_000;
/** Per organization scope, how often its repository list is read (GitHub has no organization-wide runs list). */
export const DEFAULT_ORG_REPOS_INTERVAL_MS = 600_000;
/** How long a completed job stays in the store (scale-down hysteresis reads recent completions). */
export const DEFAULT_COMPLETED_RETENTION_MS = 900_000;
/** Runs per page when listing runs, and jobs per page when listing a run's jobs (GitHub's maximum). */
export const DEMAND_PER_PAGE = 100;
/** Pages of queued or in-progress runs read per repository and status; a longer queue is read on the next pass. */
export const MAX_RUN_PAGES = 5;
/** Pages of an organization's repositories read per refresh. */
export const MAX_ORG_REPO_PAGES = 10;
/** Jobs the store thinks open but GitHub no longer lists, resolved one by one per scope and pass. */
export const MAX_JOB_LOOKUPS_PER_PASS = 50;
/** `X-GitHub-Delivery` is a GUID; anything longer or stranger is refused before it reaches a KV key. */
export const MAX_DELIVERY_ID_CHARS = 64;
/** Labels kept per job (GitHub allows far fewer in `runs-on`). */
export const MAX_JOB_LABELS = 64;
/** Compare-and-set retries when two writers update the same job at once. */
export const JOB_UPDATE_ATTEMPTS = 5;
