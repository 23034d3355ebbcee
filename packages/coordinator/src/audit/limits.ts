/** Names and bounds of the coordinator's audit trail (the local hash chain and its JetStream copy). */

/** JetStream stream holding every audit record published on `lk.v1.audit.>`. */
export const AUDIT_STREAM = "LK_AUDIT";
/** Subjects the audit stream captures: coordinators on `lk.v1.audit.coordinator.<instance>`, agents on `lk.v1.audit.agent.<host>`. */
export const AUDIT_STREAM_SUBJECTS: readonly string[] = Object.freeze(["lk.v1.audit.>"]);
/** Subject prefix of coordinator audit records; the last token names the coordinator instance. */
export const COORDINATOR_AUDIT_SUBJECT_PREFIX = "lk.v1.audit.coordinator.";
/** Most records read back from the stream in one go (`audit tail`, `audit verify --stream`). */
export const MAX_AUDIT_STREAM_READ = 100_000;
/** Most local records republished to the stream in one catch-up pass. */
export const MAX_AUDIT_CATCH_UP = 10_000;
/** Longest wait for the local chain's lock file held by another coordinator process. */
export const AUDIT_LOCK_TIMEOUT_MS = 30_000;
/** A lock file older than this is taken to be left behind by a crashed process. */
export const AUDIT_LOCK_STALE_MS = 60_000;
