/**
 * What lane operations need from the audit chain: append one record. `@lanekeeper/shared`'s `AuditLog` fits
 * this shape; tests may pass any sink. Records never carry a secret.
 */

/** Phases of an audited operation. */
export type AuditPhase = "planned" | "started" | "succeeded" | "failed" | "rejected";

/** One record to append (the chain adds seq, time and hashes). */
export interface AuditEntryInput {
  readonly source: string;
  readonly action: string;
  readonly phase: AuditPhase;
  readonly operationId?: string;
  readonly laneId?: string;
  readonly hostId?: string;
  readonly intentId?: string;
  readonly reasonCode?: string;
  readonly message?: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Appends audit records. */
export interface AuditSink {
  append(entry: AuditEntryInput): Promise<unknown>;
}

/** Minimal logger shape (pino-compatible) used by the agent's components. */
export interface AgentLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** A logger that drops everything (library default). */
export const silentLog: AgentLog = Object.freeze({
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
});
