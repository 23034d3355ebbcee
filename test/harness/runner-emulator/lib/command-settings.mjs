// Command line of `Runner.Listener`, parsed the way the real `CommandLineParser` and `CommandSettings` do:
//   cmd1 cmd2 --arg1 value --flag --arg2 value
// Leading words are commands; after the first `--x`, a word that follows `--name` is its value, a `--name`
// followed by another `--name` (or by nothing) is a flag. Names are case-insensitive. Every name can also
// come from `ACTIONS_RUNNER_INPUT_<NAME>` (a flag takes "true"); all such variables are removed from the
// environment as soon as they are read, so no child process (the worker, the job) ever sees them.

import { ENV_INPUT_PREFIX } from "./constants.mjs";

/** Names each command accepts; anything else is reported (and still honoured), as the real runner does. */
const VALID = Object.freeze({
  configure: {
    flags: [
      "check",
      "commit",
      "disableupdate",
      "ephemeral",
      "generateserviceconfig",
      "help",
      "no-default-labels",
      "replace",
      "runasservice",
      "unattended",
      "version",
    ],
    args: [
      "auth",
      "labels",
      "monitorsocketaddress",
      "name",
      "pat",
      "runnergroup",
      "token",
      "url",
      "username",
      "windowslogonaccount",
      "windowslogonpassword",
      "work",
    ],
  },
  remove: { flags: ["check", "commit", "help", "local", "version"], args: ["auth", "pat", "token"] },
  run: { flags: ["check", "commit", "help", "once", "version"], args: ["jitconfig", "startuptype"] },
  warmup: { flags: ["help", "version", "commit"], args: [] },
  "": { flags: ["check", "commit", "help", "version"], args: ["pat", "url"] },
});

const COMMANDS = Object.freeze(["configure", "remove", "run", "warmup"]);

/** Argument names whose values are secrets: never traced. */
export const SECRET_ARGS = Object.freeze(["token", "pat", "jitconfig", "windowslogonpassword"]);

/** Splits argv into commands, flags and args (first value wins, values starting with "-" are ignored). */
export function parseCommandLine(argv) {
  const commands = [];
  const flags = new Set();
  const args = new Map();
  let hasArgs = false;
  let scope = null;
  for (const arg of argv) {
    hasArgs = hasArgs || arg.startsWith("--");
    if (arg === "/?") {
      flags.add("help");
    } else if (!hasArgs) {
      commands.push(arg.trim());
    } else if (arg.startsWith("--") && arg.length > 2) {
      if (scope !== null) flags.add(scope.trim().toLowerCase());
      scope = arg.slice(2);
    } else if (!arg.startsWith("-")) {
      if (scope !== null) {
        const key = scope.trim().toLowerCase();
        if (!args.has(key)) {
          args.set(key, arg);
          scope = null;
        }
      }
    }
    // "--", "-x" and a second value after an arg are ignored.
  }
  if (scope !== null) flags.add(scope.trim().toLowerCase());
  return { commands, flags, args };
}

/** Reads and deletes every `ACTIONS_RUNNER_INPUT_*` variable; returns lower-cased name → trimmed value. */
export function takeEnvInputs(env = process.env) {
  const inputs = new Map();
  for (const key of Object.keys(env)) {
    if (key.length < ENV_INPUT_PREFIX.length || key.slice(0, ENV_INPUT_PREFIX.length).toUpperCase() !== ENV_INPUT_PREFIX) {
      continue;
    }
    const value = (env[key] ?? "").trim();
    if (value !== "") inputs.set(key.slice(ENV_INPUT_PREFIX.length).toLowerCase(), value);
    delete env[key];
  }
  return inputs;
}

/** The parsed command line plus environment inputs, with the accessors the configure/run code needs. */
export class CommandSettings {
  constructor(argv, env = process.env) {
    const parsed = parseCommandLine(argv);
    this.commands = parsed.commands;
    this.flags = parsed.flags;
    this.args = parsed.args;
    this.envInputs = takeEnvInputs(env);
  }

  /** The first command, lower-cased, or "" when none was given. */
  get command() {
    return (this.commands[0] ?? "").toLowerCase();
  }

  /** Names given on argv that the command does not know, in argv order. */
  unknowns() {
    const valid = VALID[this.command] ?? { flags: [], args: [] };
    const out = [];
    for (const c of this.commands) if (!COMMANDS.includes(c.toLowerCase())) out.push(c);
    for (const f of this.flags) if (!valid.flags.includes(f)) out.push(f);
    for (const a of this.args.keys()) if (!valid.args.includes(a)) out.push(a);
    return out;
  }

  /** A flag is set on argv, or its input variable parses as a .NET boolean "true". */
  flag(name) {
    if (this.flags.has(name)) return true;
    const v = this.envInputs.get(name);
    return v !== undefined && v.toLowerCase() === "true";
  }

  /** An arg from argv, else from its input variable, else undefined. */
  arg(name) {
    const v = this.args.get(name);
    if (v !== undefined && v !== "") return v;
    return this.envInputs.get(name);
  }

  /** Consumes an arg, as `GetArgOrPrompt` does, so that a second read prompts instead of reusing it. */
  takeArg(name) {
    const v = this.arg(name);
    this.args.delete(name);
    this.envInputs.delete(name);
    return v;
  }
}
