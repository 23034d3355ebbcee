/**
 * The NATS side of the wire contract between the agent and the coordinator: subjects, the header naming what a
 * message on the intent subject carries, and its values. Both sides import these; no other file spells a
 * subject or a header (docs/protocol.md, "The wire contract"). The envelope's payload types are in
 * `envelope.ts`, the enrollment bundle in `enrollment-bundle.ts`.
 */

/** First tokens of every lanekeeper subject: a breaking change to the wire gets a new version token. */
export const SUBJECT_ROOT = "lk.v1";

/** Subject prefix of intents (coordinator → agent, request/reply); the last token is the audience host. */
export const INTENT_SUBJECT_PREFIX = `${SUBJECT_ROOT}.intent.`;
/** Subject prefix of signed inventory snapshots (agent → coordinator); the last token is the reporting host. */
export const INVENTORY_SUBJECT_PREFIX = `${SUBJECT_ROOT}.inventory.`;
/** Subject prefix of audit records; the next token names the source (`coordinator`, `agent`). */
export const AUDIT_SUBJECT_PREFIX = `${SUBJECT_ROOT}.audit.`;
/** Subject prefix of a coordinator's audit records; the last token names the coordinator instance. */
export const COORDINATOR_AUDIT_SUBJECT_PREFIX = `${AUDIT_SUBJECT_PREFIX}coordinator.`;
/** Subject prefix of an agent's audit records; the last token is the host. */
export const AGENT_AUDIT_SUBJECT_PREFIX = `${AUDIT_SUBJECT_PREFIX}agent.`;

/** Every host's intent subject (one token wildcard), e.g. for a NATS import or a coordinator permission. */
export const ALL_INTENT_SUBJECTS = `${INTENT_SUBJECT_PREFIX}*`;
/** Every host's inventory subject: what the coordinator subscribes to. */
export const ALL_INVENTORY_SUBJECTS = `${INVENTORY_SUBJECT_PREFIX}*`;
/** Every audit subject: what the audit stream captures. */
export const ALL_AUDIT_SUBJECTS = `${AUDIT_SUBJECT_PREFIX}>`;
/** Every agent's audit subject (one token wildcard). */
export const ALL_AGENT_AUDIT_SUBJECTS = `${AGENT_AUDIT_SUBJECT_PREFIX}*`;

/** NATS header naming what a message on the intent subject carries; absent means a signed intent. */
export const KIND_HEADER = "Lk-Kind";
/** {@link KIND_HEADER} values. */
export const MESSAGE_KINDS = Object.freeze({
  /** A signed key-set update (`SignedKeySet`), answered with a signed result. */
  keyset: "keyset",
} as const);
/** {@link KIND_HEADER} value of a signed key-set update. */
export const KEYSET_KIND = MESSAGE_KINDS.keyset;

/** The intent subject of a host. */
export function intentSubject(hostId: string): string {
  return `${INTENT_SUBJECT_PREFIX}${hostId}`;
}

/** The inventory subject of a host. */
export function inventorySubject(hostId: string): string {
  return `${INVENTORY_SUBJECT_PREFIX}${hostId}`;
}

/** The audit subject of a host's agent. */
export function agentAuditSubject(hostId: string): string {
  return `${AGENT_AUDIT_SUBJECT_PREFIX}${hostId}`;
}

/** The audit subject of a coordinator instance. */
export function coordinatorAuditSubject(instance: string): string {
  return `${COORDINATOR_AUDIT_SUBJECT_PREFIX}${instance}`;
}

/**
 * The token after `prefix` in `subject` (the host a subject names), or `""` when the subject does not start
 * with `prefix`. An empty result never equals a valid host id, so callers compare it with the payload's host.
 */
export function subjectToken(prefix: string, subject: string): string {
  return subject.startsWith(prefix) ? subject.slice(prefix.length) : "";
}
