import { resolve } from "node:path";
import { keyIdOf, parseEnrollmentBundle, parseSigningPublicKey } from "@lanekeeper/shared";
import type { CliIo } from "./cli-io.js";
import { ExitCode } from "./exit-codes.js";
import { addHostToPolicyText, removeHostFromPolicyText } from "./policy-edit.js";
import { policyPath, readPolicyFile, readSmallText, writeTextAtomic } from "./policy-file.js";
import { renderTable } from "./render-table.js";

/** Options shared by the `hosts` subcommands. */
export interface HostsOptions {
  readonly policy?: string;
  readonly json?: boolean;
}

function keyIdOrQuestion(key: string): string {
  try {
    return keyIdOf(parseSigningPublicKey(key));
  } catch {
    return "?";
  }
}

/** `lanekeeper hosts list`: enrolled hosts, opt-in, capacity, identity key id, and which lanes use them. */
export async function runHostsList(opts: HostsOptions, io: CliIo): Promise<ExitCode> {
  const { policy, path } = await readPolicyFile(policyPath(opts.policy, io.env, io.cwd));
  const hosts = Object.entries(policy.hosts)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([hostId, h]) => ({
      hostId,
      optIn: h.optIn,
      capacity: h.capacity,
      identityKeyId: keyIdOrQuestion(h.enrolled.identityKey),
      usedBy: policy.lanes.filter((l) => l.hosts.includes(hostId)).map((l) => `${l.scope} ${l.pool}`),
    }));
  if (opts.json === true) {
    io.out(`${JSON.stringify({ policy: path, hosts }, null, 2)}\n`);
  } else if (hosts.length === 0) {
    io.out(`No hosts enrolled in ${path}. Enroll one with: lanekeeper hosts add <bundle-file>\n`);
  } else {
    io.out(
      renderTable(
        ["HOST", "OPT-IN", "CAPACITY", "IDENTITY KEY ID", "USED BY"],
        hosts.map((h) => [h.hostId, h.optIn ? "yes" : "no", String(h.capacity), h.identityKeyId.slice(0, 16), h.usedBy.join(", ") || "-"]),
      ),
    );
  }
  return ExitCode.OK;
}

/** Options of `lanekeeper hosts add`. */
export interface HostsAddOptions extends HostsOptions {
  readonly optIn?: boolean;
  readonly capacity?: number;
}

/**
 * `lanekeeper hosts add <bundle-file>`: validate the agent's enrollment bundle and add the host to the policy,
 * opted out unless `--opt-in`. Comments and layout of the policy file are kept; the edit is written only if the
 * whole policy still validates.
 */
export async function runHostsAdd(bundleFile: string, opts: HostsAddOptions, io: CliIo): Promise<ExitCode> {
  const file = await readPolicyFile(policyPath(opts.policy, io.env, io.cwd));
  const bundle = parseEnrollmentBundle(await readSmallText(resolve(io.cwd, bundleFile), "enrollment bundle", "ENROLLMENT_INVALID"));
  const optIn = opts.optIn === true;
  const capacity = opts.capacity ?? bundle.capacity;
  const edited = addHostToPolicyText(file.text, { bundle, optIn, capacity, enrolledAt: new Date(io.now()).toISOString() }, file.path);
  await writeTextAtomic(file.path, edited.text);
  const next: string[] = [];
  if (!optIn) next.push(`opt it in when ready: set hosts.${bundle.hostId}.optIn: true in ${file.path} (or re-add with --opt-in)`);
  if (capacity === 0) next.push(`set hosts.${bundle.hostId}.capacity (most lanes it may run; it is 0 now)`);
  next.push(`list it under lanes[].hosts for the scopes and pools it should serve`);
  next.push(`on the host, allow what lanekeeper may do: control.enabled, scopes, pools, backends, actions in the agent config`);
  if (opts.json === true) {
    io.out(
      `${JSON.stringify({ policy: file.path, added: { hostId: bundle.hostId, optIn, capacity, identityKeyId: bundle.identityKeyId, sealingKeyId: bundle.sealingKeyId }, next }, null, 2)}\n`,
    );
  } else {
    io.out(
      `Enrolled ${bundle.hostId} in ${file.path} (optIn: ${optIn}, capacity: ${capacity}).\n` +
        `  identity key id ${bundle.identityKeyId}\n  sealing key id  ${bundle.sealingKeyId}\n` +
        `Next:\n${next.map((n) => `  - ${n}\n`).join("")}`,
    );
  }
  return ExitCode.OK;
}

/** `lanekeeper hosts remove <hostId>`: drop an enrolled host that no lanes entry lists any more. */
export async function runHostsRemove(hostId: string, opts: HostsOptions, io: CliIo): Promise<ExitCode> {
  const file = await readPolicyFile(policyPath(opts.policy, io.env, io.cwd));
  const edited = removeHostFromPolicyText(file.text, file.policy, hostId, file.path);
  await writeTextAtomic(file.path, edited.text);
  if (opts.json === true) io.out(`${JSON.stringify({ policy: file.path, removed: hostId }, null, 2)}\n`);
  else {
    io.out(
      `Removed ${hostId} from ${file.path}. The coordinator no longer plans anything for it; lanes still on the host are ` +
        "left alone (drain and remove them before removing a host, or clean them up on the host).\n",
    );
  }
  return ExitCode.OK;
}
