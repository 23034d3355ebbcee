// The files in the runner root (contract 2.3): `.runner`, `.credentials`, `.credentials_rsaparams`,
// `.env`, `.path`, `.service`, and the JIT config that writes the first three.
//
// Like the real `IOUtil.SaveObject` (`File.WriteAllText(path, json, Encoding.UTF8)`), `.runner` and
// `.credentials` are indented JSON written WITH a UTF-8 byte-order mark; readers must strip it.

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const BOM = "\uFEFF";

export function paths(root) {
  return {
    root,
    runner: path.join(root, ".runner"),
    credentials: path.join(root, ".credentials"),
    rsaParams: path.join(root, ".credentials_rsaparams"),
    env: path.join(root, ".env"),
    path: path.join(root, ".path"),
    service: path.join(root, ".service"),
  };
}

function readJson(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  if (text.startsWith(BOM)) text = text.slice(1);
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Writes `obj` as the runner does: indented, UTF-8 with BOM, atomically (temp file + rename). */
function writeJson(file, obj, mode) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, BOM + JSON.stringify(obj, null, 2), { mode });
  fs.chmodSync(tmp, mode); // the umask must not widen or narrow it
  fs.renameSync(tmp, file);
}

/** `ConfigurationStore.IsConfigured`: `.runner` exists. */
export function isConfigured(root) {
  return fs.existsSync(paths(root).runner);
}

/** `ConfigurationStore.HasCredentials`: `.credentials` exists. */
export function hasCredentials(root) {
  return fs.existsSync(paths(root).credentials);
}

/** `IsServiceConfigured`: `.service` exists (written by `svc.sh install`). */
export function isServiceConfigured(root) {
  return fs.existsSync(paths(root).service);
}

export function readSettings(root) {
  return readJson(paths(root).runner);
}

export function readCredentials(root) {
  return readJson(paths(root).credentials);
}

/**
 * Saves `.runner`. Keys in the real order; default values (false, empty) are omitted, as Newtonsoft does
 * with `DefaultValueHandling.Ignore`.
 */
export function saveSettings(root, s) {
  const out = {
    agentId: s.agentId,
    agentName: s.agentName,
    poolId: s.poolId,
    poolName: s.poolName,
    serverUrl: s.serverUrl,
    gitHubUrl: s.gitHubUrl,
    workFolder: s.workFolder,
  };
  if (s.ephemeral) out.ephemeral = true;
  if (s.disableUpdate) out.disableUpdate = true;
  for (const k of Object.keys(out)) if (out[k] === undefined || out[k] === null || out[k] === "") delete out[k];
  writeJson(paths(root).runner, out, 0o644);
}

/** Saves `.credentials` (mode 0600); `data.token` is the emulator's session credential (runner-protocol.md). */
export function saveCredentials(root, cred) {
  writeJson(paths(root).credentials, cred, 0o600);
}

/**
 * Creates the RSA key of the runner and saves its private parameters in `.credentials_rsaparams` (mode 0600),
 * in the field names of .NET `RSAParameters` (base64). The emulator's protocol never uses the key; the file
 * exists because tools (and lanekeeper's cleanup) look for it.
 */
export function createRsaKey(root) {
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  const b64 = (u) => Buffer.from(u, "base64url").toString("base64");
  const params = {
    d: b64(jwk.d),
    dp: b64(jwk.dp),
    dq: b64(jwk.dq),
    exponent: b64(jwk.e),
    inverseQ: b64(jwk.qi),
    modulus: b64(jwk.n),
    p: b64(jwk.p),
    q: b64(jwk.q),
  };
  writeJson(paths(root).rsaParams, params, 0o600);
}

function unlinkQuiet(file) {
  try {
    fs.unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}

export function deleteCredentials(root) {
  unlinkQuiet(paths(root).credentials);
  unlinkQuiet(paths(root).rsaParams);
}

export function deleteSettings(root) {
  unlinkQuiet(paths(root).runner);
}

/**
 * Writes the files of a JIT config: base64 of a JSON object `{ "<file>": "<base64 content>" }`. Throws with
 * a message for the console when it does not decode. Unlike the real runner, a key that is not a plain file
 * name (a path) is refused, so a JIT config cannot write outside the runner root.
 */
export function writeJitConfig(root, encoded) {
  const text = Buffer.from(encoded, "base64").toString("utf8");
  let files;
  try {
    files = JSON.parse(text);
  } catch {
    throw new Error("The input is not a valid Base-64 string or does not hold a JSON object of config files.");
  }
  if (files === null || typeof files !== "object" || Array.isArray(files)) {
    throw new Error("The JIT config does not hold a JSON object of config files.");
  }
  for (const [name, content] of Object.entries(files)) {
    if (name === "" || name.includes("/") || name.includes("\\") || name === "." || name === "..") {
      throw new Error(`The JIT config names a file outside the runner root: '${name}'.`);
    }
    if (typeof content !== "string") throw new Error(`The JIT config entry '${name}' is not a base64 string.`);
    const file = path.join(root, name);
    const mode = name.startsWith(".credentials") ? 0o600 : 0o644;
    fs.writeFileSync(file, Buffer.from(content, "base64"), { mode });
    fs.chmodSync(file, mode);
  }
}

/** `LoadAndSetEnv`: every `KEY=VALUE` line of `.env` goes into this process's environment. */
export function loadEnvFile(root) {
  let text;
  try {
    text = fs.readFileSync(paths(root).env, "utf8");
  } catch {
    return;
  }
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf("=");
    if (i <= 0) continue;
    process.env[line.slice(0, i)] = line.slice(i + 1);
  }
}
