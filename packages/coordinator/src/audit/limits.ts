/** Names and bounds of the coordinator's audit trail (the local hash chain and its JetStream copy). */

import { ALL_AUDIT_SUBJECTS } from "@lanekeeper/shared";

/** JetStream stream holding every audit record published on shared `ALL_AUDIT_SUBJECTS` (`lk.v1.audit.>`). */
export const AUDIT_STREAM = "LK_AUDIT";
/** Subjects the audit stream captures: coordinators on `coordinatorAuditSubject`, agents on `agentAuditSubject`. */
export const AUDIT_STREAM_SUBJECTS: readonly string[] = Object.freeze([ALL_AUDIT_SUBJECTS]);
/** Most records read back from the stream in one go (`audit tail`, `audit verify --stream`). */
export const MAX_AUDIT_STREAM_READ = 100_000;
/** Most local records republished to the stream in one catch-up pass. */
export const MAX_AUDIT_CATCH_UP = 10_000;
/** Longest wait for the local chain's lock file held by another coordinator process. */
export const AUDIT_LOCK_TIMEOUT_MS = 30_000;
/** A lock file older than this is taken to be left behind by a crashed process. */
export const AUDIT_LOCK_STALE_MS = 60_000;
