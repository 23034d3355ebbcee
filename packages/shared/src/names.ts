/**
 * Strict validators for every name lanekeeper puts into a path, a unit name, a container, a command argument
 * or a GitHub label. They accept a deliberately small character set so traversal (`../x`, `%2e%2e`, full-width
 * dots, backslashes), option injection (leading `-`), instance injection (`foo@../x.service`) and control
 * characters never reach a filesystem call or an argv. Every rejection says what to fix.
 */
import { RejectError, RejectReason } from "./errors.js";
import {
  INTENT_ID_CHARS,
  MAX_CONTAINER_LABEL_KEY_CHARS,
  MAX_CONTAINER_LABEL_VALUE_CHARS,
  MAX_CONTAINER_NAME_CHARS,
  MAX_GITHUB_OWNER_CHARS,
  MAX_GITHUB_REPO_CHARS,
  MAX_HOST_ID_CHARS,
  MAX_IMAGE_REF_CHARS,
  MAX_LANE_ID_CHARS,
  MAX_POOL_NAME_CHARS,
  MAX_LABEL_CHARS,
  MAX_LABELS,
  MAX_RUNNER_GROUP_CHARS,
  MAX_RUNNER_VERSION_CHARS,
  MAX_UNIT_NAME_CHARS,
} from "./limits.js";

/** Prefix of the agent's ownership labels on containers; nobody else may set keys under it. */
export const LANEKEEPER_CONTAINER_LABEL_PREFIX = "dev.lanekeeper.";
/** Container label prefixes reserved by the engines (Docker documents `com.docker.*`, `io.docker.*`, `org.dockerproject.*`). */
export const ENGINE_RESERVED_LABEL_PREFIXES: readonly string[] = Object.freeze([
  "com.docker.",
  "io.docker.",
  "org.dockerproject.",
  "io.podman.",
  "io.containers.",
]);
/** Prefix of every unit and container lanekeeper creates. */
export const LANE_RUNTIME_NAME_PREFIX = "lanekeeper-lane-";

const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Describe the first character of `s` outside `allowed`, so a rejection can say exactly what to remove. */
function firstBadChar(s: string, allowed: RegExp): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const ch = s.charAt(i);
    if (!allowed.test(ch)) {
      const code = s.charCodeAt(i);
      const shown =
        code < 0x20 || code === 0x7f || code > 0x7e
          ? `U+${code.toString(16).toUpperCase().padStart(4, "0")}`
          : JSON.stringify(ch);
      return `character ${shown} at position ${i}`;
    }
  }
  return undefined;
}

/** Quote a value for a message without letting control characters or huge inputs into logs. */
function shown(s: string): string {
  const cut = s.length > 80 ? `${s.slice(0, 80)}…` : s;
  return JSON.stringify(cut);
}

function invalidName(what: string, value: string, fix: string): RejectError {
  return new RejectError(RejectReason.INVALID_NAME, `invalid ${what} ${shown(value)}: ${fix}`, {
    details: { what },
  });
}

function validateId(what: string, value: unknown, max: number): string {
  if (typeof value !== "string") throw invalidName(what, String(value), "must be a string");
  if (value.length === 0) throw invalidName(what, value, "must not be empty");
  if (value.length > max) throw invalidName(what, value, `must be at most ${max} characters (has ${value.length})`);
  if (!ID_RE.test(value)) {
    const bad = firstBadChar(value, /[a-z0-9-]/);
    const why = bad
      ? `${bad} is not allowed`
      : "must start with a lower-case letter or digit";
    throw invalidName(what, value, `${why}; use lower-case letters, digits and '-' ([a-z0-9][a-z0-9-]{0,62})`);
  }
  return value;
}

/** Validate a host id (`[a-z0-9][a-z0-9-]{0,62}`). Returns it; throws `RejectError(INVALID_NAME)`. */
export function validateHostId(hostId: unknown): string {
  return validateId("host id", hostId, MAX_HOST_ID_CHARS);
}

/** Validate a lane id (`[a-z0-9][a-z0-9-]{0,62}`). Returns it; throws `RejectError(INVALID_NAME)`. */
export function validateLaneId(laneId: unknown): string {
  return validateId("lane id", laneId, MAX_LANE_ID_CHARS);
}

/** Validate a pool name (`[a-z0-9][a-z0-9-]{0,62}`). Returns it; throws `RejectError(INVALID_NAME)`. */
export function validatePoolName(pool: unknown): string {
  return validateId("pool name", pool, MAX_POOL_NAME_CHARS);
}

/** Validate an intent id: 128 bits in lower-case hex (32 characters). */
export function validateIntentId(intentId: unknown): string {
  if (typeof intentId !== "string" || intentId.length !== INTENT_ID_CHARS || !/^[0-9a-f]+$/.test(intentId)) {
    throw invalidName("intent id", String(intentId), `must be exactly ${INTENT_ID_CHARS} lower-case hex characters`);
  }
  return intentId;
}

/** Validate a key id: hex SHA-256 (64 lower-case hex characters). */
export function validateKeyId(keyId: unknown): string {
  if (typeof keyId !== "string" || !/^[0-9a-f]{64}$/.test(keyId)) {
    throw invalidName("key id", String(keyId), "must be 64 lower-case hex characters (hex SHA-256 of the public key)");
  }
  return keyId;
}

/** A runner registration scope: a repository or an organization. */
export type Scope = { kind: "repo"; owner: string; repo: string } | { kind: "org"; org: string };

// GitHub logins: alphanumerics and single hyphens, not at either end, at most 39 characters.
const OWNER_RE = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9]))*$/;
// GitHub repository names: alphanumerics, '-', '_' and '.', at most 100 characters.
const REPO_RE = /^[A-Za-z0-9._-]+$/;

function validateOwner(what: string, full: string, owner: string): void {
  if (owner.length === 0 || owner.length > MAX_GITHUB_OWNER_CHARS || !OWNER_RE.test(owner)) {
    throw invalidName(
      "scope",
      full,
      `${what} must be 1-${MAX_GITHUB_OWNER_CHARS} letters, digits or single hyphens, not starting or ending with '-'`,
    );
  }
}

/**
 * Parse a scope: `owner/repo` (GitHub repository rules) or `org:<org>`. Case is kept as written: allowlists
 * compare exactly, so `Acme/API` and `acme/api` are different entries on purpose.
 */
export function parseScope(s: unknown): Scope {
  if (typeof s !== "string" || s.length === 0) {
    throw invalidName("scope", String(s), "must be \"owner/repo\" or \"org:<org>\"");
  }
  if (s.startsWith("org:")) {
    const org = s.slice(4);
    validateOwner("the organization", s, org);
    return { kind: "org", org };
  }
  const parts = s.split("/");
  if (parts.length !== 2) {
    throw invalidName("scope", s, "must be \"owner/repo\" (exactly one '/') or \"org:<org>\"");
  }
  const [owner = "", repo = ""] = parts;
  validateOwner("the owner", s, owner);
  if (repo.length === 0 || repo.length > MAX_GITHUB_REPO_CHARS || !REPO_RE.test(repo)) {
    throw invalidName(
      "scope",
      s,
      `the repository name must be 1-${MAX_GITHUB_REPO_CHARS} letters, digits, '-', '_' or '.'`,
    );
  }
  if (repo === "." || repo === "..") throw invalidName("scope", s, "the repository name cannot be '.' or '..'");
  return { kind: "repo", owner, repo };
}

/** Inverse of {@link parseScope}. */
export function scopeToString(scope: Scope): string {
  return scope.kind === "org" ? `org:${scope.org}` : `${scope.owner}/${scope.repo}`;
}

/** Validate a scope string and return it unchanged. */
export function validateScope(s: unknown): string {
  return scopeToString(parseScope(s));
}

/** Validate a runner group name (organization scopes). */
export function validateRunnerGroup(group: unknown): string {
  if (
    typeof group !== "string" ||
    group.length === 0 ||
    group.length > MAX_RUNNER_GROUP_CHARS ||
    !/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/.test(group) ||
    group.endsWith(" ")
  ) {
    throw invalidName(
      "runner group",
      String(group),
      `must be 1-${MAX_RUNNER_GROUP_CHARS} letters, digits, spaces, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return group;
}

/** Options for {@link validateLabel} and {@link validateLabels}. */
export interface LabelOptions {
  /**
   * Accept labels with the reserved `lk-` prefix. Only for the canonical labels lanekeeper itself computes;
   * policy and capability labels must leave this off.
   * @default false
   */
  allowReserved?: boolean;
}

const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._:+/-]*$/;

function invalidLabel(label: string, fix: string): RejectError {
  return new RejectError(RejectReason.INVALID_LABEL, `invalid label ${shown(label)}: ${fix}`);
}

/**
 * Validate one runner label. Conservative with respect to GitHub: at most {@link MAX_LABEL_CHARS} characters of
 * `[A-Za-z0-9._:+/-]`, starting with a letter or digit (so no commas, whitespace or control characters, which
 * would split or smuggle labels through `config.sh --labels`). The `lk-` prefix is reserved (any case).
 */
export function validateLabel(label: unknown, opts: LabelOptions = {}): string {
  if (typeof label !== "string") throw invalidLabel(String(label), "must be a string");
  if (label.length === 0) throw invalidLabel(label, "must not be empty");
  if (label.length > MAX_LABEL_CHARS) {
    throw invalidLabel(label, `must be at most ${MAX_LABEL_CHARS} characters (has ${label.length})`);
  }
  if (!LABEL_RE.test(label)) {
    const bad = firstBadChar(label, /[A-Za-z0-9._:+/-]/);
    throw invalidLabel(
      label,
      `${bad ?? "the first character"} is not allowed; use letters, digits and . _ : + / - (starting with a letter or digit)`,
    );
  }
  if (!opts.allowReserved && label.toLowerCase().startsWith("lk-")) {
    throw invalidLabel(label, "the \"lk-\" prefix is reserved for lanekeeper's own labels; rename the label");
  }
  return label;
}

/**
 * Validate a label list: each label, at most {@link MAX_LABELS}, and no duplicates (GitHub compares labels
 * case-insensitively, so `Linux` and `linux` are duplicates).
 */
export function validateLabels(labels: readonly unknown[], opts: LabelOptions = {}): string[] {
  if (labels.length > MAX_LABELS) {
    throw new RejectError(RejectReason.INVALID_LABEL, `too many labels: ${labels.length}, at most ${MAX_LABELS}`);
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const l of labels) {
    const label = validateLabel(l, opts);
    const key = label.toLowerCase();
    if (seen.has(key)) throw invalidLabel(label, "is listed twice (labels compare case-insensitively)");
    seen.add(key);
    out.push(label);
  }
  return out;
}

/** The systemd unit name of a lane: `lanekeeper-lane-<laneId>.service`. */
export function unitNameForLane(laneId: string): string {
  return `${LANE_RUNTIME_NAME_PREFIX}${validateLaneId(laneId)}.service`;
}

/** The container name of a lane: `lanekeeper-lane-<laneId>`. */
export function containerNameForLane(laneId: string): string {
  return `${LANE_RUNTIME_NAME_PREFIX}${validateLaneId(laneId)}`;
}

/** The lane id inside a lanekeeper unit name, or `undefined` when the name is not one of ours. */
export function laneIdFromUnitName(unitName: string): string | undefined {
  const m = /^lanekeeper-lane-([a-z0-9][a-z0-9-]{0,62})\.service$/.exec(unitName);
  return m?.[1];
}

/** The lane id inside a lanekeeper container name, or `undefined` when the name is not one of ours. */
export function laneIdFromContainerName(name: string): string | undefined {
  const m = /^\/?lanekeeper-lane-([a-z0-9][a-z0-9-]{0,62})$/.exec(name);
  return m?.[1];
}

/** Options for {@link validateUnitName}. */
export interface UnitNameOptions {
  /**
   * Accept one `@` (template instances). Only for names on an exact allowlist.
   * @default false
   */
  allowInstance?: boolean;
}

const UNIT_SUFFIXES = [".service", ".socket", ".timer", ".slice", ".target", ".path", ".mount", ".scope"];

/**
 * Validate a systemd unit name: a strict subset of systemd's own rules (`src/basic/unit-name.c`): ASCII
 * letters, digits, `:`, `_`, `.`, `-` (and `@` only when `allowInstance`), no `\`, no `/`, no `..`, not starting
 * with `-` or `.`, a known unit suffix, at most 255 characters.
 */
export function validateUnitName(name: unknown, opts: UnitNameOptions = {}): string {
  const what = "unit name";
  if (typeof name !== "string" || name.length === 0) throw invalidName(what, String(name), "must not be empty");
  if (name.length > MAX_UNIT_NAME_CHARS) {
    throw invalidName(what, name, `must be at most ${MAX_UNIT_NAME_CHARS} characters (has ${name.length})`);
  }
  const allowed = opts.allowInstance ? /[A-Za-z0-9:_.@-]/ : /[A-Za-z0-9:_.-]/;
  const bad = firstBadChar(name, allowed);
  if (bad) {
    const hint = name.includes("@") && !opts.allowInstance ? " (template instances are not allowed here)" : "";
    throw invalidName(what, name, `${bad} is not allowed${hint}; use letters, digits and : _ . -`);
  }
  if (name.startsWith("-") || name.startsWith(".")) throw invalidName(what, name, "must not start with '-' or '.'");
  if (name.includes("..")) throw invalidName(what, name, "must not contain '..'");
  if ((name.match(/@/g) ?? []).length > 1) throw invalidName(what, name, "must contain at most one '@'");
  if (name.startsWith("@")) throw invalidName(what, name, "must not start with '@'");
  const suffix = UNIT_SUFFIXES.find((s) => name.endsWith(s) && name.length > s.length);
  if (!suffix) throw invalidName(what, name, `must end with one of ${UNIT_SUFFIXES.join(", ")}`);
  return name;
}

/** Validate a container name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 128 characters (Docker's rule, shorter). */
export function validateContainerName(name: unknown): string {
  const what = "container name";
  if (typeof name !== "string" || name.length === 0) throw invalidName(what, String(name), "must not be empty");
  if (name.length > MAX_CONTAINER_NAME_CHARS) {
    throw invalidName(what, name, `must be at most ${MAX_CONTAINER_NAME_CHARS} characters (has ${name.length})`);
  }
  const bad = firstBadChar(name, /[A-Za-z0-9_.-]/);
  if (bad) throw invalidName(what, name, `${bad} is not allowed; use letters, digits and _ . -`);
  if (!/^[A-Za-z0-9]/.test(name)) throw invalidName(what, name, "must start with a letter or digit");
  if (name.includes("..")) throw invalidName(what, name, "must not contain '..'");
  return name;
}

/** Options for {@link validateContainerLabel}. */
export interface ContainerLabelOptions {
  /**
   * Accept keys under `dev.lanekeeper.`: only the agent itself, writing its ownership markers.
   * @default false
   */
  allowLanekeeperPrefix?: boolean;
}

function invalidContainerLabel(key: string, fix: string): RejectError {
  return new RejectError(RejectReason.INVALID_LABEL, `invalid container label ${shown(key)}: ${fix}`);
}

/**
 * Validate a container label. Keys are reverse-DNS style (`[a-z0-9]`, `.`, `-`, `_`, starting and ending with a
 * letter or digit, no `..`), at most 128 characters, and not under a reserved prefix (`dev.lanekeeper.` unless
 * `allowLanekeeperPrefix`, and the engines' `com.docker.`, `io.docker.`, `org.dockerproject.`, `io.podman.`,
 * `io.containers.`). Values: at most 1024 characters, no `=`, no newline or other control character.
 */
export function validateContainerLabel(key: unknown, value: unknown, opts: ContainerLabelOptions = {}): void {
  if (typeof key !== "string" || key.length === 0) throw invalidContainerLabel(String(key), "the key must not be empty");
  if (key.length > MAX_CONTAINER_LABEL_KEY_CHARS) {
    throw invalidContainerLabel(key, `the key must be at most ${MAX_CONTAINER_LABEL_KEY_CHARS} characters`);
  }
  const bad = firstBadChar(key, /[a-z0-9._-]/);
  if (bad) throw invalidContainerLabel(key, `${bad} is not allowed in a key; use lower-case letters, digits and . _ -`);
  if (!/^[a-z0-9]/.test(key) || !/[a-z0-9]$/.test(key) || key.includes("..")) {
    throw invalidContainerLabel(key, "the key must start and end with a letter or digit and not contain '..'");
  }
  const lower = key.toLowerCase();
  if (!opts.allowLanekeeperPrefix && lower.startsWith(LANEKEEPER_CONTAINER_LABEL_PREFIX)) {
    throw invalidContainerLabel(key, `keys under "${LANEKEEPER_CONTAINER_LABEL_PREFIX}" are reserved for the agent's ownership markers`);
  }
  const engine = ENGINE_RESERVED_LABEL_PREFIXES.find((p) => lower.startsWith(p));
  if (engine) throw invalidContainerLabel(key, `keys under "${engine}" are reserved by the container engine`);
  if (typeof value !== "string") throw invalidContainerLabel(key, "the value must be a string");
  if (value.length > MAX_CONTAINER_LABEL_VALUE_CHARS) {
    throw invalidContainerLabel(key, `the value must be at most ${MAX_CONTAINER_LABEL_VALUE_CHARS} characters`);
  }
  // eslint-disable-next-line no-control-regex
  const badValue = firstBadChar(value, /[^\u0000-\u001f\u007f=]/);
  if (badValue) throw invalidContainerLabel(key, `the value has ${badValue}; '=' and control characters are not allowed`);
}

/** Validate a runner version such as `2.330.0`. */
export function validateRunnerVersion(version: unknown): string {
  const format = "must look like 2.330.0 (three dot-separated numbers)";
  if (typeof version !== "string") throw invalidName("runner version", String(version), format);
  // The character first: a control character is what an operator has to hunt for, whatever the length.
  const bad = firstBadChar(version, /[0-9.]/);
  if (bad !== undefined) {
    // The character before the value: a result message is cut short, and the value is what gets cut.
    throw new RejectError(RejectReason.INVALID_NAME, `invalid runner version: ${bad} is not allowed; ${format} (got ${shown(version)})`, {
      details: { what: "runner version" },
    });
  }
  if (version.length > MAX_RUNNER_VERSION_CHARS) {
    throw invalidName("runner version", version, `must be at most ${MAX_RUNNER_VERSION_CHARS} characters (has ${version.length})`);
  }
  if (!/^\d{1,6}\.\d{1,6}\.\d{1,6}$/.test(version)) throw invalidName("runner version", version, format);
  return version;
}

const IMAGE_NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]{1,5})?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/**
 * Validate a container image reference pinned by digest: `name@sha256:<64 lower-case hex>` (a tag between
 * name and digest is refused: it would suggest the tag matters).
 */
export function validateImageRef(image: unknown): string {
  const fix = "must be pinned by digest: name@sha256:<64 lower-case hex>, e.g. ghcr.io/acme/runner@sha256:…";
  if (typeof image !== "string" || image.length > MAX_IMAGE_REF_CHARS) throw invalidName("image", String(image), fix);
  const at = image.indexOf("@");
  if (at <= 0) throw invalidName("image", image, fix);
  const name = image.slice(0, at);
  const digest = image.slice(at + 1);
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw invalidName("image", image, fix);
  // The registry host may contain upper case and a port; the repository path must be lower case.
  const slash = name.indexOf("/");
  const host = slash > 0 ? name.slice(0, slash) : "";
  const hostLooksLikeRegistry = host.includes(".") || host.includes(":") || host === "localhost";
  const path = hostLooksLikeRegistry ? name.slice(slash + 1) : name;
  if (hostLooksLikeRegistry && !/^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$/.test(host)) throw invalidName("image", image, fix);
  if (!IMAGE_NAME_RE.test(path) || path.includes(":")) throw invalidName("image", image, fix);
  return image;
}
