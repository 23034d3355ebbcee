// Executable documentation: the procedures of docs/runbook.md marked `<!-- runbook-procedure: <name> -->`, split
// into the steps an operator runs one after the other, with the variables at their top set to a test fleet's.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** The runbook the procedures come from. */
export const RUNBOOK_PATH = fileURLToPath(new URL("../../docs/runbook.md", import.meta.url));

/** One marked procedure: its variable block and its numbered steps (`# 0. …`, `# 1. …`). */
export interface RunbookProcedure {
  name: string;
  /** Lines before the first step: variables and helper functions the operator sets first. */
  preamble: string;
  steps: { title: string; script: string }[];
  /** Names of the shell variables the procedure assigns anywhere (top-level `name=`), to carry between steps. */
  variables: string[];
}

/** Extracts the procedure marked `name` from the runbook text. Throws when the marker or its block is missing. */
export function parseProcedure(markdown: string, name: string): RunbookProcedure {
  const marker = `<!-- runbook-procedure: ${name} -->`;
  const at = markdown.indexOf(marker);
  if (at < 0) throw new Error(`runbook has no procedure ${name}`);
  const m = /^\s*```sh\n([\s\S]*?)\n```/.exec(markdown.slice(at + marker.length));
  if (!m) throw new Error(`procedure ${name}: no sh block right after the marker`);
  const lines = m[1]!.split("\n");
  const preamble: string[] = [];
  const steps: { title: string; script: string[] }[] = [];
  for (const line of lines) {
    const step = /^# (\d+)\. (.*)$/.exec(line);
    if (step) steps.push({ title: `${step[1]}. ${step[2]}`, script: [] });
    const into = steps.at(-1)?.script ?? preamble;
    into.push(line);
  }
  const variables = [...new Set(lines.flatMap((l) => /^([a-z_][a-z0-9_]*)=/.exec(l)?.[1] ?? []))];
  return { name, preamble: preamble.join("\n"), steps: steps.map((s) => ({ title: s.title, script: s.script.join("\n") })), variables };
}

/** Reads the runbook and extracts one procedure. */
export async function loadProcedure(name: string): Promise<RunbookProcedure> {
  return parseProcedure(await readFile(RUNBOOK_PATH, "utf8"), name);
}

/**
 * The preamble with the operator's settings replaced: every `name=` line whose name is in `values` gets that value.
 * Throws when a value names a variable the procedure does not set, so the test and the runbook cannot drift apart.
 */
export function setVariables(proc: RunbookProcedure, values: Record<string, string>): string {
  const seen = new Set<string>();
  const out = proc.preamble
    .split("\n")
    .map((line) => {
      const v = /^([a-z_][a-z0-9_]*)=/.exec(line)?.[1];
      if (v === undefined || values[v] === undefined) return line;
      seen.add(v);
      return `${v}=${shellQuote(values[v])}`;
    })
    .join("\n");
  const missing = Object.keys(values).filter((k) => !seen.has(k));
  if (missing.length > 0) throw new Error(`procedure ${proc.name} sets no ${missing.join(", ")} at its top`);
  return out;
}

/**
 * The script of step `i`: strict bash, the state the earlier steps left (variables and functions, from
 * `stateFile`), the step, then the state saved again for the next step.
 */
export function stepScript(proc: RunbookProcedure, preamble: string, i: number, stateFile: string): string {
  const carried = proc.variables.join(" ");
  return [
    "set -euo pipefail",
    preamble,
    `if [ -s ${shellQuote(stateFile)} ]; then . ${shellQuote(stateFile)}; fi`,
    proc.steps[i]!.script,
    `{ declare -p ${carried} 2>/dev/null || true; declare -f; } > ${shellQuote(stateFile)}`,
  ].join("\n");
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
