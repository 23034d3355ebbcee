import { randomBytes } from "node:crypto";
import { link, open, readFile, rename, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { connect } from "nats";
import {
  decodeSignedKeySet,
  encodeSignedKeySet,
  formatTrustFile,
  generateSigningKey,
  keyIdOf,
  KeyStatus,
  LanekeeperError,
  parseSigningPublicKey,
  parseTrustFile,
  publicKeyToPem,
  signingKeyToPem,
  TrustedKeySet as TrustedKeySetCodec,
  type SignedKeySet,
  type SigningKey,
  type TrustedKeySet,
} from "@lanekeeper/shared";
import { hostRegistryFromPolicy, natsOptionsFromPolicy, NatsUnavailableError, readSigningKey } from "../context/coordinator-context.js";
import {
  activateKey,
  announceKey,
  assertRootOf,
  dropRetiredKeys,
  initialKeySet,
  pushKeySetUpdate,
  rootSignersOf,
  rotateRoot,
  signKeySetUpdate,
} from "../dispatch/key-rotation.js";
import type { CliIo } from "./cli-io.js";
import { ExitCode, exitCodeForCode } from "./exit-codes.js";
import { policyPath, readPolicyFile } from "./policy-file.js";
import type { CoordinatorErrorCode } from "../error-codes.js";

/** A key file operation that would destroy or skip something. */
export class KeyFileError extends LanekeeperError<CoordinatorErrorCode> {
  constructor(code: "KEY_FILE_EXISTS" | "KEY_ROTATION_INVALID", message: string) {
    super(code, message);
  }
}

/** Options of `lanekeeper keys …`. */
export interface KeysCommandOptions {
  readonly policy?: string;
  readonly json?: boolean;
  /** rotate: `announce`, `activate` or `retire` (default: the next step: announce, or activate after an announce). */
  readonly phase?: "announce" | "activate" | "retire";
  /** rotate / root-rotate: deliver the signed update to every enrolled host over NATS. */
  readonly push?: boolean;
  /** rotate / root-rotate: where to write the signed update (default `<keyFile>.keyset-v<version>.update`); root-init: the root key file. */
  readonly out?: string;
  /** generate: the root public key file `keys root-init` wrote (`<root-key>.pub`), pinned in the version-1 set. */
  readonly rootPublicKey?: string;
  /** rotate / root-rotate: the offline root key file (`keys root-init`), the only key agents accept key sets from. */
  readonly rootKey?: string;
  /** root-rotate: the new root key file (another `keys root-init`), which signs its own introduction too. */
  readonly newRootKey?: string;
}

/** The files of the coordinator's key, all beside `coordinator.keyFile`. */
export interface KeyFiles {
  /** The active intent-signing key (PKCS#8 PEM, 0600). */
  readonly key: string;
  /** The announced next key, between `rotate` announce and activate. */
  readonly next: string;
  /** The key set agents trust now, in trust-file format (install it as the agents' `trustFile`). */
  readonly keyset: string;
}

/** Where the key files live for a key file path. */
export function keyFiles(keyFile: string): KeyFiles {
  return { key: keyFile, next: `${keyFile}.next`, keyset: `${keyFile}.keyset.json` };
}

async function exists(path: string): Promise<boolean> {
  try {
    await readFile(path);
    return true;
  } catch {
    return false;
  }
}

/** Write a new file atomically with `mode`; refuses to replace an existing file unless `replace`. */
async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number, replace: boolean): Promise<void> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString("hex")}.lanekeeper.tmp`);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    if (replace) await rename(tmp, path);
    else await link(tmp, path); // fails with EEXIST instead of replacing
  } finally {
    if (!replace) await unlink(tmp).catch(() => undefined);
  }
}

async function readKeySet(path: string): Promise<TrustedKeySet> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new KeyFileError("KEY_ROTATION_INVALID", `the current key set ${path} is missing; it is written by \`lanekeeper keys generate\``);
  }
  return parseTrustFile(text, path);
}

function activeKeyId(set: TrustedKeySet): string | undefined {
  return set.keys.find((k) => k.status === KeyStatus.KEY_STATUS_ACTIVE)?.keyId;
}

/**
 * `lanekeeper keys generate --root-public-key <file>`: a new Ed25519 intent-signing key at `coordinator.keyFile`
 * (0600; never replaces one) and the version-1 key set beside it (`<keyFile>.keyset.json`), pinning the root key:
 * the trust file to install on every agent.
 */
export async function runKeysGenerate(opts: KeysCommandOptions, io: CliIo): Promise<ExitCode> {
  const policy = (await readPolicyFile(policyPath(opts.policy, io.env, io.cwd))).policy;
  const files = keyFiles(policy.coordinator.keyFile);
  if (await exists(files.key)) {
    throw new KeyFileError("KEY_FILE_EXISTS", `${files.key} exists: a signing key is never replaced by generate; rotate it with \`lanekeeper keys rotate\``);
  }
  if (opts.rootPublicKey === undefined) {
    throw new KeyFileError(
      "KEY_ROTATION_INVALID",
      "--root-public-key <file> is required: every key set pins the offline root key; create it with `lanekeeper keys root-init --out <file>`",
    );
  }
  const rootPublic = await readRootPublicKey(resolve(io.cwd, opts.rootPublicKey));
  const key = generateSigningKey();
  const set = initialKeySet(key, rootPublic, { nowMs: io.now() });
  try {
    await writeFileAtomic(files.key, signingKeyToPem(key), 0o600, false);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new KeyFileError("KEY_FILE_EXISTS", `${files.key} exists`);
    throw err;
  }
  await writeFileAtomic(files.keyset, formatTrustFile(set), 0o644, true);
  const result = { keyId: key.keyId, keyFile: files.key, trustFile: files.keyset, version: set.version, rootKeyId: rootPublic.keyId };
  io.out(
    opts.json === true
      ? `${JSON.stringify(result, null, 2)}\n`
      : `signing key ${key.keyId} written to ${files.key} (mode 0600)\n` +
          `trust file (key set version ${set.version}, root key ${rootPublic.keyId}) written to ${files.keyset}: install it on every agent as its trustFile\n`,
  );
  return ExitCode.OK;
}

/** The outcome of pushing one update to the enrolled hosts. */
interface PushResult {
  readonly hostId: string;
  readonly ok: boolean;
  readonly version?: number;
  readonly code?: string;
  readonly message?: string;
}

async function pushToHosts(policyFile: string, io: CliIo, signed: SignedKeySet): Promise<PushResult[]> {
  const policy = (await readPolicyFile(policyFile)).policy;
  const hosts = hostRegistryFromPolicy(policy);
  let nc;
  try {
    nc = await connect(await natsOptionsFromPolicy(policy, io.env));
  } catch (err) {
    if (err instanceof LanekeeperError) throw err;
    throw new NatsUnavailableError(`cannot connect to NATS at ${policy.coordinator.natsUrl}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const out: PushResult[] = [];
    for (const hostId of Object.keys(policy.hosts).sort()) {
      try {
        const version = await pushKeySetUpdate(nc, hosts, hostId, signed, { timeoutMs: policy.coordinator.resultTimeoutMs });
        out.push({ hostId, ok: true, version });
      } catch (err) {
        const e = err as { reasonCode?: string; message?: string };
        out.push({ hostId, ok: false, code: e.reasonCode ?? "KEYSET_PUSH_FAILED", message: e.message ?? String(err) });
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}

/**
 * `lanekeeper keys rotate`: one phase of a key rotation (DESIGN.md section 4), producing the signed key-set update
 * through the dispatch key-rotation helpers:
 * - `announce` (default when no next key exists): a new key at `<keyFile>.next`, announced as NEXT.
 * - `activate` (default after an announce): the next key becomes ACTIVE, the old one RETIRED (valid until every
 *   intent it signed expired); then `<keyFile>.next` becomes the key file (the old key is kept as
 *   `<keyFile>.retired-<keyId>`).
 * - `retire`: RETIRED keys whose window passed are dropped.
 * Every update is signed by the offline root key (`--root-key <file>`, required), never by an intent key: agents
 * refuse anything else.
 * The update is written to a file (deliver it out of band) and, with `--push`, sent to every enrolled host.
 */
export async function runKeysRotate(opts: KeysCommandOptions, io: CliIo): Promise<ExitCode> {
  const pPath = policyPath(opts.policy, io.env, io.cwd);
  const policy = (await readPolicyFile(pPath)).policy;
  const files = keyFiles(policy.coordinator.keyFile);
  const set = await readKeySet(files.keyset);
  const active = await readSigningKey(files.key);
  if (activeKeyId(set) !== active.keyId) {
    throw new KeyFileError("KEY_ROTATION_INVALID", `${files.key} (key ${active.keyId}) is not the ACTIVE key of ${files.keyset}; the files disagree`);
  }
  const root = await readRootKey(opts.rootKey, set, io);
  const hasNext = await exists(files.next);
  const phase = opts.phase ?? (hasNext ? "activate" : "announce");
  const t = { nowMs: io.now() };
  let next: TrustedKeySet;
  let signers: SigningKey[];
  let newKey: SigningKey | undefined;
  switch (phase) {
    case "announce": {
      if (hasNext) throw new KeyFileError("KEY_ROTATION_INVALID", `${files.next} exists: a key is already announced; activate it with \`lanekeeper keys rotate --phase activate\``);
      newKey = generateSigningKey();
      next = announceKey(set, newKey, t);
      signers = [root];
      break;
    }
    case "activate": {
      if (!hasNext) throw new KeyFileError("KEY_ROTATION_INVALID", `no announced key (${files.next}); run \`lanekeeper keys rotate --phase announce\` first`);
      newKey = await readSigningKey(files.next);
      next = activateKey(set, newKey.keyId, t);
      signers = [root];
      break;
    }
    case "retire":
      next = dropRetiredKeys(set, t);
      signers = [root];
      break;
  }
  const signed = signKeySetUpdate(next, signers);
  const out = resolve(io.cwd, opts.out ?? `${files.key}.keyset-v${next.version}.update`);
  await writeFileAtomic(out, encodeSignedKeySet(signed), 0o644, true);
  const pushed = opts.push === true ? await pushToHosts(pPath, io, signed) : [];
  const allOk = pushed.every((p) => p.ok);
  // Signing with the new key before every agent trusts it would lock the others out: an activation whose push
  // did not reach every host leaves the key files as they were.
  const switched = phase !== "activate" || allOk;
  if (switched) {
    // Key files change only after the update is safely on disk, so a crash in between can be redone.
    if (phase === "announce" && newKey !== undefined) await writeFileAtomic(files.next, signingKeyToPem(newKey), 0o600, false);
    if (phase === "activate" && newKey !== undefined) {
      await rename(files.key, `${files.key}.retired-${active.keyId.slice(0, 16)}`);
      await rename(files.next, files.key);
    }
    await writeFileAtomic(files.keyset, formatTrustFile(next), 0o644, true);
  }
  const result = {
    phase,
    version: next.version,
    update: out,
    trustFile: files.keyset,
    keys: next.keys.map((k) => ({ keyId: k.keyId, status: KeyStatus[k.status].replace(/^KEY_STATUS_/, "").toLowerCase() })),
    pushed,
    keyFilesUpdated: switched,
  };
  if (opts.json === true) io.out(`${JSON.stringify(result, null, 2)}\n`);
  else {
    io.out(`key set version ${next.version} (${phase}): ${result.keys.map((k) => `${k.keyId.slice(0, 16)} ${k.status}`).join(", ")}\n`);
    io.out(`signed update written to ${out}; trust file ${files.keyset}\n`);
    for (const p of pushed) io.out(p.ok ? `  ${p.hostId}: trusts version ${p.version ?? "?"}\n` : `  ${p.hostId}: NOT updated (${p.code ?? ""}: ${p.message ?? ""})\n`);
    if (opts.push !== true) io.out("deliver it with `lanekeeper keys push <update-file>` (or --push next time)\n");
    if (!switched) io.out("the key files were NOT switched: fix the hosts above, then run the activation again\n");
  }
  return allOk ? ExitCode.OK : exitCodeForCode("KEYSET_PUSH_FAILED");
}

/**
 * `lanekeeper keys push <update-file> [--root-key <file>]`: send a root-signed key-set update to every enrolled
 * host. The update must carry a signature by a root key of the coordinator's key set; `--root-key` adds that
 * signature (an update signed elsewhere, or re-signed after the root file came back online).
 */
export async function runKeysPush(file: string, opts: KeysCommandOptions, io: CliIo): Promise<ExitCode> {
  const pPath = policyPath(opts.policy, io.env, io.cwd);
  let signed = decodeSignedKeySet(await readFile(resolve(io.cwd, file)));
  const keysetPath = keyFiles((await readPolicyFile(pPath)).policy.coordinator.keyFile).keyset;
  const set = await readKeySet(keysetPath);
  if (opts.rootKey !== undefined) signed = addRootSignature(signed, await readRootKey(opts.rootKey, set, io));
  // Agents refuse an update no root key signed; say so here, before anything goes on the wire.
  if (rootSignersOf(signed, set).length === 0) {
    throw new KeyFileError(
      "KEY_ROTATION_INVALID",
      `${file} is not signed by the root key of ${keysetPath}: agents would refuse it (KEYSET_NOT_ROOT_SIGNED); ` +
        "sign it with `lanekeeper keys push --root-key <root-key-file>` or produce it with `lanekeeper keys rotate --root-key <root-key-file>`",
    );
  }
  const pushed = await pushToHosts(pPath, io, signed);
  if (opts.json === true) io.out(`${JSON.stringify({ pushed }, null, 2)}\n`);
  else for (const p of pushed) io.out(p.ok ? `${p.hostId}: trusts version ${p.version ?? "?"}\n` : `${p.hostId}: NOT updated (${p.code ?? ""}: ${p.message ?? ""})\n`);
  return pushed.every((p) => p.ok) ? ExitCode.OK : exitCodeForCode("KEYSET_PUSH_FAILED");
}

/** The root public key file `keys root-init` wrote (SPKI PEM, or base64 of the raw 32 bytes). */
async function readRootPublicKey(path: string): Promise<{ keyId: string; publicKey: Buffer }> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new KeyFileError("KEY_ROTATION_INVALID", `cannot read the root public key ${path}; it is written by \`lanekeeper keys root-init\``);
  }
  const publicKey = parseSigningPublicKey(text);
  return { keyId: keyIdOf(publicKey), publicKey };
}

/** The offline root key from `--root-key`, checked to be an active root of `set`. */
async function readRootKey(file: string | undefined, set: TrustedKeySet, io: CliIo): Promise<SigningKey> {
  if (file === undefined) {
    throw new KeyFileError(
      "KEY_ROTATION_INVALID",
      "--root-key <file> is required: agents accept key-set updates signed by the offline root key only (bring the `keys root-init` file online for this command)",
    );
  }
  const root = await readSigningKey(resolve(io.cwd, file));
  try {
    assertRootOf(set, root);
  } catch (err) {
    throw new KeyFileError("KEY_ROTATION_INVALID", `${file}: ${(err as Error).message}`);
  }
  return root;
}

function addRootSignature(signed: SignedKeySet, root: SigningKey): SignedKeySet {
  if (signed.signatures.some((s) => s.keyId === root.keyId)) return signed;
  const set = TrustedKeySetCodec.decode(signed.payload);
  const bySelf = signKeySetUpdate(set, [root]);
  // The payload bytes are the ones already signed: re-encode nothing, only add the root's signature over them.
  if (!Buffer.from(bySelf.payload).equals(Buffer.from(signed.payload))) {
    throw new KeyFileError("KEY_ROTATION_INVALID", "the update's payload does not re-encode to the same bytes; produce it again with `keys rotate --root-key`");
  }
  return { ...signed, signatures: [...signed.signatures, ...bySelf.signatures] };
}

/**
 * `lanekeeper keys root-init --out <file>`: a new offline root key. The private key goes to `<file>` (PKCS#8 PEM,
 * mode 0600, never replaced, never printed): move it offline. The public key goes to `<file>.pub` (SPKI PEM): pass
 * it to `keys generate --root-public-key` and to the agent installer (`--root-public-key`).
 */
export async function runKeysRootInit(opts: KeysCommandOptions, io: CliIo): Promise<ExitCode> {
  if (opts.out === undefined) throw new KeyFileError("KEY_ROTATION_INVALID", "--out <file> is required: where to write the root key (then move it offline)");
  const keyPath = resolve(io.cwd, opts.out);
  const pubPath = `${keyPath}.pub`;
  const root = generateSigningKey();
  try {
    await writeFileAtomic(keyPath, signingKeyToPem(root), 0o600, false);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new KeyFileError("KEY_FILE_EXISTS", `${keyPath} exists: a root key is never replaced; rotate it with \`lanekeeper keys root-rotate\``);
    throw err;
  }
  await writeFileAtomic(pubPath, publicKeyToPem(root.publicKey, "ed25519"), 0o644, true);
  const result = { rootKeyId: root.keyId, rootKeyFile: keyPath, rootPublicKeyFile: pubPath };
  io.out(
    opts.json === true
      ? `${JSON.stringify(result, null, 2)}\n`
      : `root key ${root.keyId} written to ${keyPath} (mode 0600): move it OFFLINE; it signs every key-set change\n` +
          `root public key written to ${pubPath}: pass it to \`keys generate --root-public-key\` and to install-agent.sh --root-public-key\n`,
  );
  return ExitCode.OK;
}

/**
 * `lanekeeper keys root-rotate --root-key <old> --new-root-key <new>`: a key set naming the new root as the only
 * root, signed by the old root (which agents trust) and the new one (proof it is held). Written like `rotate`,
 * pushed with `--push`; the coordinator's key set switches at once (hosts that missed it still trust the old root:
 * push the same update file to them with `keys push`).
 */
export async function runKeysRootRotate(opts: KeysCommandOptions, io: CliIo): Promise<ExitCode> {
  const pPath = policyPath(opts.policy, io.env, io.cwd);
  const policy = (await readPolicyFile(pPath)).policy;
  const files = keyFiles(policy.coordinator.keyFile);
  const set = await readKeySet(files.keyset);
  const oldRoot = await readRootKey(opts.rootKey, set, io);
  if (opts.newRootKey === undefined) throw new KeyFileError("KEY_ROTATION_INVALID", "--new-root-key <file> is required (create it with `lanekeeper keys root-init --out <file>`)");
  const newRoot = await readSigningKey(resolve(io.cwd, opts.newRootKey));
  let next: TrustedKeySet;
  try {
    next = rotateRoot(set, newRoot, { nowMs: io.now() });
  } catch (err) {
    throw new KeyFileError("KEY_ROTATION_INVALID", (err as Error).message);
  }
  const signed = signKeySetUpdate(next, [oldRoot, newRoot]);
  const out = resolve(io.cwd, opts.out ?? `${files.key}.keyset-v${next.version}.update`);
  await writeFileAtomic(out, encodeSignedKeySet(signed), 0o644, true);
  await writeFileAtomic(files.keyset, formatTrustFile(next), 0o644, true);
  const pushed = opts.push === true ? await pushToHosts(pPath, io, signed) : [];
  const result = { version: next.version, update: out, trustFile: files.keyset, oldRootKeyId: oldRoot.keyId, rootKeyId: newRoot.keyId, pushed };
  if (opts.json === true) io.out(`${JSON.stringify(result, null, 2)}\n`);
  else {
    io.out(`key set version ${next.version}: root key ${oldRoot.keyId.slice(0, 16)} replaced by ${newRoot.keyId.slice(0, 16)}\n`);
    io.out(`signed update written to ${out}; trust file ${files.keyset}\n`);
    for (const p of pushed) io.out(p.ok ? `  ${p.hostId}: trusts version ${p.version ?? "?"}\n` : `  ${p.hostId}: NOT updated (${p.code ?? ""}: ${p.message ?? ""})\n`);
    io.out("keep the old root key until every host trusts this version, then destroy it\n");
  }
  return pushed.every((p) => p.ok) ? ExitCode.OK : exitCodeForCode("KEYSET_PUSH_FAILED");
}
