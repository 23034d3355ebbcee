/**
 * Where in a YAML file a config issue is: schema and cross-field rules speak in paths (`control.scopes[0]`), an
 * operator's editor in lines and columns. This maps one to the other on the parsed YAML tree.
 */
import { isMap, isScalar, isSeq, type LineCounter, type Node } from "yaml";

/** A path segment: an object key or an array index. */
export type PathSegment = string | number;

/** A 1-based place in a file. */
export interface ConfigPlace {
  readonly line: number;
  readonly column: number;
}

/**
 * Read a path written by `formatConfigPath` (`a.b[0]["odd key"]`) back into segments, or `undefined` when the
 * text is not such a path.
 */
export function parseConfigPath(text: string): PathSegment[] | undefined {
  const out: PathSegment[] = [];
  const token = /\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  let pos = 0;
  while (pos < text.length) {
    token.lastIndex = pos;
    const m = token.exec(text);
    // A leading dot, or a bare name after the first segment, is not something formatConfigPath writes.
    if (m === null || (m[1] !== undefined && (out.length === 0) === text.startsWith(".", pos))) return undefined;
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else out.push(JSON.parse(m[3] as string) as string);
    pos = token.lastIndex;
  }
  return out;
}

/**
 * The place of `path` in the YAML tree `root`: the key of a mapping entry (so `pools.linux: 5` points at
 * `linux`, and an unknown key at itself), the item of a sequence. A path that leaves the tree (a missing key, a
 * scalar where a mapping was expected) is placed at the deepest node that exists: a missing required key is
 * reported where its parent is.
 */
export function placeOf(root: Node | null | undefined, path: readonly PathSegment[], lc: LineCounter): ConfigPlace | undefined {
  let node: unknown = root;
  let offset = root?.range?.[0];
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as Node | undefined;
      if (item === undefined) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  if (offset === undefined) return undefined;
  const { line, col } = lc.linePos(offset);
  return { line, column: col };
}
