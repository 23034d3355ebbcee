/**
 * The one way lanekeeper reads a YAML config or policy: a single YAML 1.2 document (core schema), no BOM, no
 * duplicate keys, no `__proto__`/`constructor`/`prototype` keys, no unresolved tags; then a strict zod schema
 * (unknown keys rejected); then cross-field rules; then a deep freeze. Every problem becomes a
 * `ConfigError` issue `{path, message}` with the path written like `control.scopes[0]` and, when the text was
 * YAML, the line and column of the node the path names (schema and cross-field issues included). The caller names
 * the file.
 */
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node, type YAMLError } from "yaml";
import type { z } from "zod";
import { parseConfigPath, placeOf, type PathSegment } from "./config-place.js";
import { ConfigError, type ConfigIssue } from "./errors.js";
import { MAX_CONFIG_BYTES } from "./limits.js";

export type { PathSegment } from "./config-place.js";

/** Keys that could reach an object prototype, refused wherever they appear. */
export const FORBIDDEN_CONFIG_KEYS: readonly string[] = Object.freeze(["__proto__", "constructor", "prototype"]);

/** Render a path as `a.b[0]["odd key"]`. */
export function formatConfigPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (typeof seg === "string" && /^[A-Za-z0-9_-]+$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** Freeze an object graph in place and return it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** The issue's place, as `{line, column}` fields (1-based), or nothing when the offset is unknown. */
function at(lc: LineCounter, offset: number | undefined): { line?: number; column?: number } {
  if (offset === undefined) return {};
  const { line, col } = lc.linePos(offset);
  return { line, column: col };
}

/** Walk the YAML tree for keys that are duplicated or dangerous, reporting their paths. */
function checkKeys(node: Node | null | undefined, path: PathSegment[], lc: LineCounter, issues: ConfigIssue[]): void {
  if (isMap(node)) {
    const seen = new Set<string>();
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
      if (key === undefined) {
        issues.push({ path: formatConfigPath(path), message: "keys must be plain strings", ...at(lc, keyNode?.range?.[0]) });
        continue;
      }
      const keyPath = formatConfigPath([...path, key]);
      if (FORBIDDEN_CONFIG_KEYS.includes(key)) {
        issues.push({ path: keyPath, message: `the key "${key}" is not allowed`, ...at(lc, keyNode?.range?.[0]) });
        continue;
      }
      if (seen.has(key)) {
        issues.push({ path: keyPath, message: "duplicate key; keep only one", ...at(lc, keyNode?.range?.[0]) });
        continue;
      }
      seen.add(key);
      checkKeys(pair.value as Node | null, [...path, key], lc, issues);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => checkKeys(item as Node | null, [...path, i], lc, issues));
  }
}

/**
 * The YAML syntax problems worth showing. One mistake often makes the parser report several errors after it, so
 * only the first is shown; tabs used for indentation (a common paste accident) become one message naming every
 * line that has them.
 */
function syntaxIssues(errors: readonly YAMLError[], lc: LineCounter): ConfigIssue[] {
  const sorted = [...errors].sort((a, b) => a.pos[0] - b.pos[0]);
  const tabs = sorted.filter((e) => e.code === "TAB_AS_INDENT");
  const first = tabs[0] ?? sorted[0];
  if (first === undefined) return [];
  if (tabs.length > 0) {
    const lines = [...new Set(tabs.map((e) => lc.linePos(e.pos[0]).line))];
    return [
      {
        path: "",
        message: `a tab is used for indentation (YAML allows spaces only) on line${lines.length === 1 ? "" : "s"} ${lines.join(", ")}; indent with spaces`,
        ...at(lc, first.pos[0]),
      },
    ];
  }
  const more = sorted.length - 1;
  const text = first.message.split("\n")[0] ?? first.code;
  return [{ path: "", message: more > 0 ? `${text} (fix this first: the ${more} problem${more === 1 ? "" : "s"} reported after it may follow from it)` : text, ...at(lc, first.pos[0]) }];
}

/** Parsed YAML: the plain data, and where a path's node is in the text. */
interface ParsedYaml {
  readonly data: unknown;
  readonly locate: (path: readonly PathSegment[]) => { line?: number; column?: number };
}

/**
 * Parse `text` as exactly one YAML document into plain data, or throw `ConfigError`. `file` names where the text
 * came from (shared reads no files); errors then read `file:line:column: message`.
 */
export function parseYamlDocument(text: string, what: string, file?: string): unknown {
  return parseYaml(text, what, file).data;
}

function parseYaml(text: string, what: string, file: string | undefined): ParsedYaml {
  const fail: (issues: ConfigIssue[]) => never = (issues) => {
    throw new ConfigError(what, issues, { file });
  };
  if (typeof text !== "string") fail([{ path: "", message: "must be text" }]);
  if (Buffer.byteLength(text, "utf8") > MAX_CONFIG_BYTES) fail([{ path: "", message: `larger than ${MAX_CONFIG_BYTES} bytes` }]);
  if (text.charCodeAt(0) === 0xfeff) fail([{ path: "", message: "starts with a byte-order mark (BOM); save it as UTF-8 without BOM" }]);
  if (text.includes("\u0000")) fail([{ path: "", message: "contains a NUL character" }]);
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, {
    lineCounter: lc,
    uniqueKeys: true,
    strict: true,
    stringKeys: true,
    schema: "core",
    merge: false,
    prettyErrors: false,
  });
  if (!Array.isArray(docs) || docs.length === 0) fail([{ path: "", message: "is empty" }]);
  const all = docs as Document[];
  if (all.length > 1) {
    fail([
      {
        path: "",
        message: `holds ${all.length} YAML documents; keep exactly one (remove the "---" separator and what follows)`,
        ...at(lc, all[1]?.range?.[0]),
      },
    ]);
  }
  const doc = all[0] as Document;
  // A syntax error is shown alone: the key checks would only describe the half-parsed tree it left. Duplicate
  // keys are reported by the key walk, with their paths.
  const syntax = syntaxIssues([...doc.errors, ...doc.warnings].filter((e) => e.code !== "DUPLICATE_KEY"), lc);
  if (syntax.length > 0) fail(syntax);
  const issues: ConfigIssue[] = [];
  checkKeys(doc.contents, [], lc, issues);
  if (issues.length > 0) fail(issues);
  let data: unknown;
  try {
    // The alias cap stops "billion laughs" documents from expanding without bound.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    fail([{ path: "", message: (err as Error).message }]);
  }
  if (data === null || data === undefined) fail([{ path: "", message: "is empty" }]);
  return { data, locate: (path) => placeOf(doc.contents, path, lc) ?? {} };
}

/** Where a path is; nothing when the data did not come from YAML text. */
type Locate = ParsedYaml["locate"];
const nowhere: Locate = () => ({});

/** Zod's path segments as config path segments (zod allows symbols, which no YAML key can be). */
function segments(path: readonly PropertyKey[]): PathSegment[] {
  return path.map((p) => (typeof p === "number" ? p : String(p)));
}

function issuesFromZod(error: z.ZodError, locate: Locate): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const push = (path: readonly PropertyKey[], message: string): void => {
    out.push({ path: formatConfigPath(path), message, ...locate(segments(path)) });
  };
  for (const i of error.issues) {
    if (i.code === "unrecognized_keys") {
      for (const k of i.keys) push([...i.path, k], "unknown key; remove it or fix its spelling");
    } else if (i.code === "invalid_key") {
      push(i.path, `invalid key: ${i.issues.map((x) => x.message).join("; ")}`);
    } else {
      push(i.path, i.message);
    }
  }
  return out;
}

/** Cross-field issues name their path as text; place those that have none yet. */
function placed(issues: readonly ConfigIssue[], locate: Locate): ConfigIssue[] {
  return issues.map((i) => {
    if (i.line !== undefined) return i;
    const path = parseConfigPath(i.path);
    return path === undefined ? i : { ...i, ...locate(path) };
  });
}

/**
 * Validate parsed data with `schema`, then `crossCheck` (which returns issues for rules spanning fields), then
 * deep-freeze the result. `file` names the file in the error, as in {@link parseYamlDocument}.
 */
export function validateConfig<S extends z.ZodType>(
  data: unknown,
  schema: S,
  what: string,
  crossCheck: (value: z.output<S>) => ConfigIssue[] = () => [],
  file?: string,
): Readonly<z.output<S>> {
  return validate(data, schema, what, crossCheck, file, nowhere);
}

function validate<S extends z.ZodType>(
  data: unknown,
  schema: S,
  what: string,
  crossCheck: (value: z.output<S>) => ConfigIssue[],
  file: string | undefined,
  locate: Locate,
): Readonly<z.output<S>> {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new ConfigError(what, issuesFromZod(parsed.error, locate), { file });
  const value = parsed.data;
  const issues = crossCheck(value);
  if (issues.length > 0) throw new ConfigError(what, placed(issues, locate), { file });
  return deepFreeze(value);
}

/**
 * {@link parseYamlDocument} then {@link validateConfig}, keeping the YAML tree so that every schema and
 * cross-field issue is also placed: the line and column of the node its path names, or of the nearest parent
 * that exists when the key is missing. Errors read `file:line:column: path: message`.
 */
export function loadYamlConfig<S extends z.ZodType>(
  text: string,
  schema: S,
  what: string,
  crossCheck: (value: z.output<S>) => ConfigIssue[] = () => [],
  file?: string,
): Readonly<z.output<S>> {
  const { data, locate } = parseYaml(text, what, file);
  return validate(data, schema, what, crossCheck, file, locate);
}
