/**
 * The one way lanekeeper reads a YAML config or policy: a single YAML 1.2 document (core schema), no BOM, no
 * duplicate keys, no `__proto__`/`constructor`/`prototype` keys, no unresolved tags; then a strict zod schema
 * (unknown keys rejected); then cross-field rules; then a deep freeze. Every problem becomes a
 * `ConfigError` issue `{path, message}` with the path written like `control.scopes[0]`.
 */
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigIssue } from "./errors.js";
import { MAX_CONFIG_BYTES } from "./limits.js";

/** Keys that could reach an object prototype, refused wherever they appear. */
export const FORBIDDEN_CONFIG_KEYS: readonly string[] = Object.freeze(["__proto__", "constructor", "prototype"]);

/** A path segment: an object key or an array index. */
export type PathSegment = string | number;

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

function where(lc: LineCounter, offset: number | undefined): string {
  if (offset === undefined) return "";
  const { line, col } = lc.linePos(offset);
  return ` (line ${line}, column ${col})`;
}

/** Walk the YAML tree for keys that are duplicated or dangerous, reporting their paths. */
function checkKeys(node: Node | null | undefined, path: PathSegment[], lc: LineCounter, issues: ConfigIssue[]): void {
  if (isMap(node)) {
    const seen = new Set<string>();
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
      if (key === undefined) {
        issues.push({ path: formatConfigPath(path), message: `keys must be plain strings${where(lc, keyNode?.range?.[0])}` });
        continue;
      }
      const keyPath = formatConfigPath([...path, key]);
      if (FORBIDDEN_CONFIG_KEYS.includes(key)) {
        issues.push({ path: keyPath, message: `the key "${key}" is not allowed${where(lc, keyNode?.range?.[0])}` });
        continue;
      }
      if (seen.has(key)) {
        issues.push({ path: keyPath, message: `duplicate key; keep only one${where(lc, keyNode?.range?.[0])}` });
        continue;
      }
      seen.add(key);
      checkKeys(pair.value as Node | null, [...path, key], lc, issues);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => checkKeys(item as Node | null, [...path, i], lc, issues));
  }
}

/** Parse `text` as exactly one YAML document into plain data, or throw `ConfigError`. */
export function parseYamlDocument(text: string, what: string): unknown {
  if (typeof text !== "string") throw new ConfigError(what, [{ path: "", message: "must be text" }]);
  if (Buffer.byteLength(text, "utf8") > MAX_CONFIG_BYTES) {
    throw new ConfigError(what, [{ path: "", message: `larger than ${MAX_CONFIG_BYTES} bytes` }]);
  }
  if (text.charCodeAt(0) === 0xfeff) {
    throw new ConfigError(what, [{ path: "", message: "starts with a byte-order mark (BOM); save it as UTF-8 without BOM" }]);
  }
  if (text.includes("\u0000")) throw new ConfigError(what, [{ path: "", message: "contains a NUL character" }]);
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
  if (!Array.isArray(docs) || docs.length === 0) throw new ConfigError(what, [{ path: "", message: "is empty" }]);
  if (docs.length > 1) {
    const second = docs[1] as Document;
    throw new ConfigError(what, [
      {
        path: "",
        message: `holds ${docs.length} YAML documents; keep exactly one (remove the "---" separator and what follows${where(lc, second.range?.[0])})`,
      },
    ]);
  }
  const doc = docs[0] as Document;
  const issues: ConfigIssue[] = [];
  checkKeys(doc.contents, [], lc, issues);
  for (const e of [...doc.errors, ...doc.warnings]) {
    if (e.code === "DUPLICATE_KEY" && issues.some((i) => i.message.startsWith("duplicate key"))) continue;
    issues.push({ path: "", message: `${e.message.split("\n")[0] ?? e.code}` });
  }
  if (issues.length > 0) throw new ConfigError(what, issues);
  let data: unknown;
  try {
    // The alias cap stops "billion laughs" documents from expanding without bound.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(what, [{ path: "", message: (err as Error).message }]);
  }
  if (data === null || data === undefined) throw new ConfigError(what, [{ path: "", message: "is empty" }]);
  return data;
}

function issuesFromZod(error: z.ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const i of error.issues) {
    if (i.code === "unrecognized_keys") {
      for (const k of i.keys) {
        out.push({ path: formatConfigPath([...i.path, k]), message: "unknown key; remove it or fix its spelling" });
      }
    } else if (i.code === "invalid_key") {
      const inner = i.issues.map((x) => x.message).join("; ");
      out.push({ path: formatConfigPath(i.path), message: `invalid key: ${inner}` });
    } else if (i.code === "invalid_union") {
      out.push({ path: formatConfigPath(i.path), message: i.message });
    } else {
      out.push({ path: formatConfigPath(i.path), message: i.message });
    }
  }
  return out;
}

/**
 * Validate parsed data with `schema`, then `crossCheck` (which returns issues for rules spanning fields), then
 * deep-freeze the result.
 */
export function validateConfig<S extends z.ZodType>(
  data: unknown,
  schema: S,
  what: string,
  crossCheck: (value: z.output<S>) => ConfigIssue[] = () => [],
): Readonly<z.output<S>> {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new ConfigError(what, issuesFromZod(parsed.error));
  const value = parsed.data;
  const issues = crossCheck(value);
  if (issues.length > 0) throw new ConfigError(what, issues);
  return deepFreeze(value);
}
