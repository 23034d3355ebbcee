/**
 * Canonical JSON for hashing: object keys sorted by UTF-16 code units at every level, no whitespace, strings and
 * numbers as `JSON.stringify` writes them, `undefined` object members omitted. Values JSON cannot represent
 * exactly (non-finite numbers, bigints, functions, symbols, undefined array items) are refused, so two parties
 * never hash different texts for one value.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError("canonical JSON cannot hold a non-finite number");
      return JSON.stringify(value);
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        return `[${value
          .map((v: unknown) => {
            if (v === undefined) throw new TypeError("canonical JSON cannot hold undefined in an array");
            return canonicalJson(v);
          })
          .join(",")}]`;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError("canonical JSON holds plain objects only");
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
}
