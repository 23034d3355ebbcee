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
