// `config.sh` (configure) and `config.sh remove`: ConfigurationManager.ConfigureAsync / UnconfigureAsync,
// talking to the GitHub emulator's `/_runner/register` and `/_runner/remove` instead of GitHub's private API.

import os from "node:os";
import { DEFAULT_WORK_FOLDER, OS_LABEL, archLabel, timing } from "./constants.mjs";
import { TransportError, ensureSuccessMessage, request, statusName } from "./http.mjs";
import { readBool, readValue } from "./prompt.mjs";
import {
  createRsaKey,
  deleteCredentials,
  deleteSettings,
  hasCredentials,
  isConfigured,
  isServiceConfigured,
  readCredentials,
  readSettings,
  saveCredentials,
  saveSettings,
} from "./store.mjs";
import { term } from "./terminal.mjs";

/** A configure/remove failure: the message goes to stderr and the listener exits 1 (TerminatedError). */
export class ConfigError extends Error {}

const BANNER = [
  "",
  "--------------------------------------------------------------------------------",
  "|        ____ _ _   _   _       _          _        _   _                      |",
  "|       / ___(_) |_| | | |_   _| |__      / \\   ___| |_(_) ___  _ __  ___      |",
  "|      | |  _| | __| |_| | | | | '_ \\    / _ \\ / __| __| |/ _ \\| '_ \\/ __|     |",
  "|      | |_| | | |_|  _  | |_| | |_) |  / ___ \\ (__| |_| | (_) | | | \\__ \\     |",
  "|       \\____|_|\\__|_| |_|\\__,_|_.__/  /_/   \\_\\___|\\__|_|\\___/|_| |_|___/     |",
  "|                                                                              |",
  "|                       Self-hosted runner registration                        |",
  "|                                                                              |",
  "--------------------------------------------------------------------------------",
];

function isServerUrl(v) {
  try {
    const u = new URL(v);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

/** Labels: comma-separated, each non-empty one at most 256 characters. */
function isLabels(v) {
  return v.split(",").every((l) => l.length <= 256);
}

/** Where the emulator's `/_runner/` API lives for a runner `--url`: `LK_RUNNER_EMULATOR_URL` or its origin. */
export function emulatorBase(githubUrl) {
  const override = process.env.LK_RUNNER_EMULATOR_URL;
  if (override && override.trim() !== "") return override.trim().replace(/\/+$/, "");
  return new URL(githubUrl).origin;
}

/** The `/_runner` base recorded in `.credentials` (`authorizationUrl`), else derived from `.runner`. */
export function runnerApiBase(settings, credentials) {
  const fromCred = credentials?.data?.authorizationUrl;
  if (typeof fromCred === "string" && fromCred !== "") return fromCred.replace(/\/+$/, "");
  return `${emulatorBase(settings.gitHubUrl)}/_runner`;
}

function argOrPrompt(cmd, name, description, opts = {}) {
  const given = cmd.takeArg(name);
  const validator = opts.validator ?? ((v) => v !== "");
  if (given !== undefined && given !== "" && validator(given)) return given;
  return readValue({ argName: name, description, validator, unattended: cmd.flag("unattended"), ...opts });
}

/** Prints an HTTP failure the way `GetTenantCredential` does and returns the exception to throw. */
function httpFailure(method, url, res) {
  term.error(`Http response code: ${statusName(res.status)} from '${method} ${url}'`);
  if (res.text) term.error(res.text);
  return new ConfigError(ensureSuccessMessage(res.status));
}

function messageOf(res) {
  return typeof res.body?.message === "string" ? res.body.message : res.text || ensureSuccessMessage(res.status);
}

async function post(url, token, body) {
  try {
    return await request("POST", url, { auth: `RemoteAuth ${token}`, body, timeoutMs: timing().requestTimeoutMs });
  } catch (e) {
    if (e instanceof TransportError) throw new ConfigError(e.message);
    throw e;
  }
}

/** `config.sh [--flags]`. Returns normally on success; throws {@link ConfigError} (exit 1) otherwise. */
export async function configure(root, cmd, diag) {
  for (const l of BANNER) term.line(l);
  if (isConfigured(root)) {
    throw new ConfigError(
      "Cannot configure the runner because it is already configured. To reconfigure the runner, run 'config.cmd remove' or './config.sh remove' first.",
    );
  }
  const unattended = cmd.flag("unattended");
  term.section("Authentication");
  const url = argOrPrompt(cmd, "url", "What is the URL of your repository?", { validator: isServerUrl });
  if (cmd.arg("pat") !== undefined && cmd.arg("token") === undefined) {
    throw new ConfigError("The runner emulator does not mint tokens from --pat; pass --token.");
  }
  const token = argOrPrompt(cmd, "token", "What is your runner register token?");
  const base = emulatorBase(url);

  // The emulator registers in one call, so everything the real runner asks after authenticating is read
  // first; unattended runs print the same sections in the same order either way.
  const runnerGroup = cmd.takeArg("runnergroup");
  let name = argOrPrompt(cmd, "name", "Enter the name of runner:", { defaultValue: os.hostname() || "myrunner" });
  const labelText = argOrPrompt(
    cmd,
    "labels",
    `This runner will have the following labels: 'self-hosted', '${OS_LABEL}', '${archLabel()}' \nEnter any additional labels (ex. label-1,label-2):`,
    { validator: isLabels, isOptional: true },
  );
  const labels = [];
  for (const l of labelText.split(",")) {
    if (l !== "" && !labels.some((x) => x.toLowerCase() === l.toLowerCase())) labels.push(l);
  }
  const noDefaultLabels = cmd.flag("no-default-labels");
  const replaceFlag = cmd.flag("replace");
  const ephemeral = cmd.flag("ephemeral");
  const disableUpdate = cmd.flag("disableupdate");
  const workHint = cmd.arg("work") ?? DEFAULT_WORK_FOLDER;
  diag.info(`configure url=${url} name=${name} labels=${labels.join(",")} group=${runnerGroup ?? "(default)"} ephemeral=${ephemeral}`);

  const registerUrl = `${base}/_runner/register`;
  const body = (replace) => ({
    url,
    name,
    labels,
    noDefaultLabels,
    ...(runnerGroup !== undefined ? { runnerGroup } : {}),
    ephemeral,
    replace,
    workFolder: workHint,
  });

  if (noDefaultLabels && labels.length === 0) {
    // Refused before anything is registered; the real runner gets here after authenticating.
    term.line();
    term.success("Connected to GitHub");
    term.section("Runner Registration");
    throw new ConfigError("Disabling default labels via --no-default-labels without specifying --labels is not supported");
  }
  let res = await post(registerUrl, token, body(false));
  if (res.status === 401 || (res.status === 404 && !/runner group/i.test(messageOf(res)))) {
    throw httpFailure("POST", registerUrl, res);
  }
  term.line();
  term.success("Connected to GitHub");
  term.section("Runner Registration");
  let replaced = false;
  for (;;) {
    if (res.status === 409) {
      term.line("A runner exists with the same name");
      const replace = replaceFlag || readBool({ argName: "replace", description: "Would you like to replace the existing runner? (Y/N)", defaultValue: false, unattended });
      if (replace) {
        res = await post(registerUrl, token, body(true));
        replaced = true;
        continue;
      }
      if (unattended) throw new ConfigError(`A runner exists with the same name ${name}.`);
      const again = readValue({ argName: "name", description: "Enter the name of runner:", defaultValue: "", unattended: false, isOptional: true });
      if (again === "") throw new ConfigError(`A runner exists with the same name ${name}.`);
      name = again;
      res = await post(registerUrl, token, body(false));
      continue;
    }
    break;
  }
  if (res.status !== 201 && res.status !== 200) {
    if (res.status === 404 || res.status === 422 || res.status === 400) throw new ConfigError(messageOf(res));
    throw httpFailure("POST", registerUrl, res);
  }
  const reg = res.body ?? {};
  if (typeof reg.credential !== "string" || typeof reg.agentId !== "number") {
    throw new ConfigError("The server's registration response lacks agentId or credential.");
  }
  term.success(replaced ? "Successfully replaced the runner" : "Runner successfully added");

  saveCredentials(root, {
    scheme: "OAuth",
    data: {
      clientId: String(reg.agentId),
      authorizationUrl: `${base}/_runner`,
      requireFipsCryptography: "False",
      token: reg.credential,
    },
  });
  createRsaKey(root);

  term.section("Runner settings");
  const workFolder = argOrPrompt(cmd, "work", "Enter name of work folder:", { defaultValue: DEFAULT_WORK_FOLDER });
  saveSettings(root, {
    agentId: reg.agentId,
    agentName: reg.agentName ?? name,
    poolId: reg.poolId,
    poolName: reg.poolName,
    serverUrl: reg.serverUrl,
    gitHubUrl: reg.gitHubUrl ?? url,
    workFolder,
    ephemeral: reg.ephemeral === true || ephemeral,
    disableUpdate,
  });
  term.line();
  term.success("Settings Saved.");
  term.line();
  diag.info(`configured agentId=${reg.agentId}`);
}

/** `DeleteLocalRunnerConfig` (also the tail of `remove` and the end of an ephemeral run). */
export function deleteLocalRunnerConfig(root) {
  const configured = isConfigured(root);
  if (hasCredentials(root)) {
    deleteCredentials(root);
    term.success("Removed .credentials");
  } else {
    term.line("Does not exist. Skipping Removing .credentials");
  }
  if (configured) {
    deleteSettings(root);
    term.success("Removed .runner");
  } else {
    term.line("Does not exist. Skipping Removing .runner");
  }
}

/** `config.sh remove [--token T] [--local]`. Throws {@link ConfigError} (exit 1) on failure. */
export async function remove(root, cmd, diag) {
  if (cmd.flag("local")) {
    deleteLocalRunnerConfig(root);
    return;
  }
  term.section("Runner removal");
  let action = "";
  try {
    if (isServiceConfigured(root)) {
      action = "Removing service";
      term.line(action);
      throw new ConfigError("Uninstall service first");
    }
    action = "Removing runner from the server";
    const configured = isConfigured(root);
    const creds = hasCredentials(root);
    if (configured && creds) {
      const settings = readSettings(root) ?? {};
      const credentials = readCredentials(root);
      const token = argOrPrompt(cmd, "token", "Enter runner remove token:");
      const url = `${runnerApiBase(settings, credentials)}/remove`;
      const res = await post(url, token, { url: settings.gitHubUrl, agentId: settings.agentId });
      diag.info(`remove agentId=${settings.agentId} -> ${res.status}`);
      if (res.status === 204 || res.status === 200) {
        term.line();
        term.success("Runner removed successfully");
      } else if (res.status === 404) {
        term.line(`Does not exist. Skipping ${action}`);
      } else if (res.status === 401) {
        throw httpFailure("POST", url, res);
      } else {
        throw new ConfigError(messageOf(res));
      }
    } else {
      term.line("Cannot connect to server, because config files are missing. Skipping removing runner from the server.");
    }
    action = "Removing .credentials";
    if (creds) {
      deleteCredentials(root);
      term.success("Removed .credentials");
    } else {
      term.line(`Does not exist. Skipping ${action}`);
    }
    action = "Removing .runner";
    if (configured) {
      deleteSettings(root);
      term.success("Removed .runner");
    } else {
      term.line(`Does not exist. Skipping ${action}`);
    }
  } catch (e) {
    term.error(`Failed: ${action}`);
    throw e;
  }
  term.line();
}
