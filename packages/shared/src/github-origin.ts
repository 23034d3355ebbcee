/**
 * The GitHub origin(s) an agent's lanes may register with (DESIGN §4, invariant 8): a create's runner URL must
 * be exactly `<allowed origin>/<owner>/<repo>` (repository scope) or `<allowed origin>/<org>` (organization
 * scope). The comparison is on the exact text, never on a parsed-and-normalized URL, so nothing a URL parser
 * forgives (`..` segments, percent-encoding, an explicit default port, userinfo, a trailing `?`) can make a
 * different server pass for an allowed one. A stolen online coordinator key can ask for an allowed scope, but
 * not send the runner's registration (and the token in it) anywhere else.
 */
import { RejectError, RejectReason } from "./errors.js";
import { parseScope } from "./names.js";
import { MAX_URL_CHARS } from "./limits.js";

/** The origin agents allow when their config names none. */
export const DEFAULT_GITHUB_ORIGIN = "https://github.com";

/**
 * Check that `text` is written as a bare origin (`scheme://host[:port]`, lower-case, no path, no trailing
 * slash) with scheme `https:` (or `http:` when `allowHttp`). Returns an error message, or undefined when it is.
 * Used by the agent config, where an origin written any other way is refused rather than rewritten, so the
 * file says exactly what is compared.
 */
export function githubOriginProblem(text: string, opts: { allowHttp: boolean }): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return "is not a URL; write an origin such as https://github.com or https://ghes.example.com";
  }
  const schemes = opts.allowHttp ? ["http:"] : ["https:"];
  if (!schemes.includes(u.protocol)) {
    return opts.allowHttp
      ? "must be an http:// origin (https origins belong in github.origins)"
      : "must be an https:// origin (plain http is only for local test fleets: github.allowInsecureHttpOrigins)";
  }
  if (u.origin !== text) return `must be written exactly as the origin ${u.origin} (no path, credentials, query or trailing slash)`;
  return undefined;
}

/** Which part of a refused runner URL differs from every allowed one, in plain words. */
function whyNotAllowed(url: string, expectedPath: string, origins: readonly string[]): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "it is not a URL";
  }
  if (u.username !== "" || u.password !== "") return "it carries credentials (userinfo)";
  if (u.search !== "" || u.hash !== "" || /[?#]/.test(url)) return "it has a query or fragment";
  const origin = u.origin;
  if (!origins.includes(origin)) {
    const sameHost = origins.filter((o) => new URL(o).hostname === u.hostname);
    if (sameHost.some((o) => new URL(o).protocol !== u.protocol)) return `its scheme ${u.protocol.slice(0, -1)} is not allowed for this host`;
    if (sameHost.length > 0) return `its port is not the allowed one (${sameHost.join(", ")})`;
    return `its origin ${origin} is not in github.origins`;
  }
  if (u.pathname !== expectedPath) return `its path must be exactly ${expectedPath}`;
  return `it must be written exactly as ${origin}${expectedPath}`;
}

/**
 * Refuse (`GITHUB_ORIGIN_NOT_ALLOWED`) a runner URL that is not exactly `<origin><scope path>` for one of
 * `origins` (bare origins, as checked by {@link githubOriginProblem}). `scope` must already be valid.
 * Returns the URL.
 */
export function checkRunnerUrl(url: string, scope: string, origins: readonly string[]): string {
  const s = parseScope(scope);
  const expectedPath = s.kind === "repo" ? `/${s.owner}/${s.repo}` : `/${s.org}`;
  if (url.length <= MAX_URL_CHARS && origins.some((o) => url === `${o}${expectedPath}`)) return url;
  const shown = JSON.stringify(url.length > 120 ? `${url.slice(0, 120)}…` : url);
  throw new RejectError(
    RejectReason.GITHUB_ORIGIN_NOT_ALLOWED,
    // The reason first: result messages are cut short, and the URL is what may be long.
    `runner URL refused: ${whyNotAllowed(url, expectedPath, origins)}; lanes of scope ${scope} register only with ${origins.map((o) => o + expectedPath).join(" or ") || "(no origin allowed)"}; got ${shown}`,
    { details: { scope } },
  );
}

/** Every origin a runner URL may use: the https `origins` plus the explicitly insecure http ones. */
export function allowedGithubOrigins(github: { readonly origins: readonly string[]; readonly allowInsecureHttpOrigins: readonly string[] }): string[] {
  return [...github.origins, ...github.allowInsecureHttpOrigins];
}
