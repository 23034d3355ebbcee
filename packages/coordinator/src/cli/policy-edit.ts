import { ConfigError, parsePolicy, type EnrollmentBundle, type Policy } from "@lanekeeper/shared";
import { isMap, isScalar, parseDocument, YAMLMap, type Document } from "yaml";
import { CliError } from "./cli-errors.js";

/** What `hosts add` writes. */
export interface HostEntry {
  readonly bundle: EnrollmentBundle;
  readonly optIn: boolean;
  readonly capacity: number;
  /** ISO date for the comment above the entry. */
  readonly enrolledAt: string;
}

/** `the policy <file>`, or `the policy` when the caller named no file. */
const thePolicy = (file: string | undefined): string => (file === undefined ? "the policy" : `the policy ${file}`);

function load(text: string, file: string | undefined): Document {
  const doc = parseDocument(text, { keepSourceTokens: true });
  if (doc.errors.length > 0) throw new CliError("POLICY_UNREADABLE", `${thePolicy(file)} is not valid YAML: ${doc.errors[0]?.message ?? ""}`);
  return doc;
}

/**
 * Re-parse the edited text with the full schema: an edit is written only if the whole policy stays valid. The
 * issues are listed by path only: their lines would be lines of the edited text, which is never written.
 */
function validated(text: string, what: string, file: string | undefined): { text: string; policy: Policy } {
  try {
    return { text, policy: parsePolicy(text) };
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new CliError("ENROLLMENT_INVALID", `${what} would make ${thePolicy(file)} invalid:\n${err.issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`);
    }
    throw err;
  }
}

/**
 * Add an enrolled host under `hosts:`, keeping every comment and the layout of the rest of the file. The
 * host is written with `optIn` as given (false unless the operator said `--opt-in`).
 */
export function addHostToPolicyText(text: string, entry: HostEntry, file?: string): { text: string; policy: Policy } {
  const doc = load(text, file);
  const { bundle } = entry;
  const current = doc.get("hosts", true);
  let hosts: YAMLMap;
  if (isMap(current)) {
    hosts = current;
  } else if (current === undefined || (isScalar(current) && current.value === null)) {
    hosts = new YAMLMap();
    // A comment that followed `hosts:` belongs to its (empty) value; keep it with the new map.
    if (current !== undefined) {
      hosts.comment = current.comment;
      hosts.commentBefore = current.commentBefore;
    }
    doc.set("hosts", hosts);
  } else {
    throw new CliError("POLICY_UNREADABLE", `hosts: in ${thePolicy(file)} is not a mapping`);
  }
  if (hosts.has(bundle.hostId)) {
    throw new CliError("HOST_EXISTS", `host ${bundle.hostId} is already enrolled; remove it first with \`lanekeeper hosts remove ${bundle.hostId}\` to replace its keys`);
  }
  // A flow-style `hosts: {}` would otherwise stay on one line.
  hosts.flow = false;
  const node = doc.createNode({
    enrolled: { identityKey: bundle.identityKey, sealingKey: bundle.sealingKey },
    optIn: entry.optIn,
    capacity: entry.capacity,
  });
  node.commentBefore = ` enrolled ${entry.enrolledAt} by lanekeeper hosts add; identity key id ${bundle.identityKeyId}`;
  const pair = doc.createPair(bundle.hostId, node);
  hosts.items.push(pair);
  return validated(doc.toString(), `adding host ${bundle.hostId}`, file);
}

/** Remove a host from `hosts:`; refused while a `lanes:` entry still lists it. */
export function removeHostFromPolicyText(text: string, policy: Policy, hostId: string, file?: string): { text: string; policy: Policy } {
  if (!Object.hasOwn(policy.hosts, hostId)) throw new CliError("HOST_NOT_FOUND", `host ${hostId} is not enrolled (see \`lanekeeper hosts list\`)`);
  const users = policy.lanes.map((l, i) => ({ l, i })).filter(({ l }) => l.hosts.includes(hostId));
  if (users.length > 0) {
    throw new CliError(
      "HOST_IN_USE",
      `host ${hostId} is still listed by ${users.map(({ l, i }) => `lanes[${i}] (${l.scope} ${l.pool})`).join(", ")}; ` +
        "remove it from those lists first (its lanes are then moved off it), then remove the host",
    );
  }
  const doc = load(text, file);
  const hosts = doc.get("hosts", true);
  if (!isMap(hosts) || !hosts.has(hostId)) throw new CliError("HOST_NOT_FOUND", `host ${hostId} is not under hosts: in ${thePolicy(file)}`);
  hosts.delete(hostId);
  return validated(doc.toString(), `removing host ${hostId}`, file);
}
