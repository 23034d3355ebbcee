// `PromptManager.ReadValue`: an unattended run takes the default or fails; an attended run prompts on stdin.
// Unlike the real runner, which prompts forever when stdin is closed, the emulator fails like an unattended
// run at end of input, so a misconfigured caller gets an error instead of a hang.

import fs from "node:fs";
import { term } from "./terminal.mjs";

let stdinEnded = false;

/** Reads one line from stdin synchronously; null at end of input. */
function readLine() {
  if (stdinEnded) return null;
  const bytes = [];
  const one = Buffer.alloc(1);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, one, 0, 1, null);
    } catch (e) {
      if (e && e.code === "EAGAIN") continue;
      n = 0;
    }
    if (n === 0) {
      stdinEnded = true;
      return bytes.length > 0 ? Buffer.from(bytes).toString("utf8") : null;
    }
    if (one[0] === 0x0a) return Buffer.from(bytes).toString("utf8").replace(/\r$/, "");
    bytes.push(one[0]);
  }
}

export function unattendedError(argName) {
  return new Error(`Invalid configuration provided for ${argName}. Terminating unattended configuration.`);
}

/**
 * Returns a value for `argName`: the default (or "" if optional) when unattended, otherwise what the user
 * types, re-prompting on invalid input.
 */
export function readValue({ argName, description, defaultValue = "", validator = (v) => v !== "", unattended, isOptional = false }) {
  if (unattended) {
    if (defaultValue !== "") return defaultValue;
    if (isOptional) return "";
    throw unattendedError(argName);
  }
  for (;;) {
    let text = `${description} `;
    if (defaultValue !== "") text += `[press Enter for ${defaultValue}] `;
    else if (isOptional) text += "[press Enter to skip] ";
    term.write(text);
    const line = readLine();
    if (line === null) {
      term.line();
      if (defaultValue !== "") return defaultValue;
      if (isOptional) return "";
      throw unattendedError(argName);
    }
    const value = line.trim();
    if (value === "") {
      if (defaultValue !== "") return defaultValue;
      if (isOptional) return "";
      continue;
    }
    if (validator(value)) return value;
    term.line("Entered value is invalid");
  }
}

/** `PromptManager.ReadBool`: Y/N with a default. */
export function readBool({ argName, description, defaultValue, unattended }) {
  const v = readValue({
    argName,
    description,
    defaultValue: defaultValue ? "Y" : "N",
    validator: (x) => /^(y|yes|n|no|true|false)$/i.test(x),
    unattended,
  });
  return /^(y|yes|true)$/i.test(v);
}
