import { describe, expect, it } from "vitest";
import {
  agentAuditSubject,
  ALL_AGENT_AUDIT_SUBJECTS,
  ALL_AUDIT_SUBJECTS,
  ALL_INTENT_SUBJECTS,
  ALL_INVENTORY_SUBJECTS,
  coordinatorAuditSubject,
  INTENT_SUBJECT_PREFIX,
  INVENTORY_SUBJECT_PREFIX,
  intentSubject,
  inventorySubject,
  KEYSET_KIND,
  KIND_HEADER,
  subjectToken,
} from "./wire-contract.js";

describe("wire contract", () => {
  // Deployed nats-server configs (install/nats-server.example.conf) and older agents spell these out: changing one
  // is a wire break, so it must show up here and in docs/protocol.md.
  it("keeps the subjects, header and kinds of docs/protocol.md", () => {
    expect(intentSubject("build01")).toBe("lk.v1.intent.build01");
    expect(inventorySubject("build01")).toBe("lk.v1.inventory.build01");
    expect(agentAuditSubject("build01")).toBe("lk.v1.audit.agent.build01");
    expect(coordinatorAuditSubject("one")).toBe("lk.v1.audit.coordinator.one");
    expect([ALL_INTENT_SUBJECTS, ALL_INVENTORY_SUBJECTS, ALL_AUDIT_SUBJECTS, ALL_AGENT_AUDIT_SUBJECTS]).toEqual([
      "lk.v1.intent.*",
      "lk.v1.inventory.*",
      "lk.v1.audit.>",
      "lk.v1.audit.agent.*",
    ]);
    expect([KIND_HEADER, KEYSET_KIND]).toEqual(["Lk-Kind", "keyset"]);
  });

  it("reads the host token of a subject, and nothing from a foreign subject", () => {
    expect(subjectToken(INTENT_SUBJECT_PREFIX, intentSubject("b-2"))).toBe("b-2");
    expect(subjectToken(INTENT_SUBJECT_PREFIX, inventorySubject("b-2"))).toBe("");
    expect(subjectToken(INVENTORY_SUBJECT_PREFIX, "lk.v1.inventory")).toBe("");
    expect(subjectToken(INVENTORY_SUBJECT_PREFIX, "lk.v1.inventory.a.b")).toBe("a.b");
  });
});
