/**
 * Log lines for a person at a terminal. Daemons log JSON lines for their service manager; an interactive command
 * prints its own human output on stderr, and a raw JSON line in the middle of it reads as garbage. This turns
 * each of pino's JSON lines (already redacted) into `warn: message (key=value, ...)`.
 */
import type { DestinationStream } from "pino";

const LEVEL_NAMES: Readonly<Record<number, string>> = Object.freeze({ 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" });

/** Keys every line carries that a person does not need repeated. */
const QUIET_KEYS = new Set(["level", "time", "msg", "component", "pid", "hostname"]);

/** Longest rendered value; a huge object is cut, the line stays one line. */
const MAX_VALUE_CHARS = 200;

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, "; ");
}

function renderValue(v: unknown): string {
  let s: string;
  if (typeof v === "string") s = /^[^\s,()=]+$/.test(v) ? v : JSON.stringify(v);
  else if (v !== null && typeof v === "object" && typeof (v as { message?: unknown }).message === "string") s = JSON.stringify((v as { message: string }).message);
  else s = JSON.stringify(v) ?? String(v);
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS - 1)}…` : s;
}

/**
 * One pino JSON line as a human line: `<level>: [<component>: ]<msg>[ (key=value, ...)]`, with no trailing
 * newline. `rootComponent` is left out (it is the program itself). A line that is not pino JSON is kept as text,
 * prefixed with `log: `, so it never starts with `{`.
 */
export function renderLogLine(line: string, rootComponent?: string): string {
  let o: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new TypeError("not an object");
    o = parsed as Record<string, unknown>;
  } catch {
    return `log: ${oneLine(line.trim())}`;
  }
  const level = typeof o.level === "number" ? (LEVEL_NAMES[o.level] ?? `level ${o.level}`) : typeof o.level === "string" ? o.level : "log";
  const component = typeof o.component === "string" && o.component !== rootComponent ? `${o.component}: ` : "";
  const msg = typeof o.msg === "string" ? oneLine(o.msg) : "";
  const fields = Object.entries(o)
    .filter(([k]) => !QUIET_KEYS.has(k))
    .map(([k, v]) => `${k}=${oneLine(renderValue(v))}`);
  return `${level}: ${component}${msg}${fields.length > 0 ? ` (${fields.join(", ")})` : ""}`;
}

/**
 * A pino destination that writes every line through {@link renderLogLine} to `write` (one `\n`-terminated line
 * per call), for the interactive commands of both CLIs.
 */
export function humanLogDestination(write: (text: string) => void, rootComponent?: string): DestinationStream {
  return {
    write(chunk: string): void {
      for (const line of chunk.split("\n")) if (line.trim() !== "") write(`${renderLogLine(line, rootComponent)}\n`);
    },
  };
}
