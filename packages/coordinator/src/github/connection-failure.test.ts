import { describe, expect, it } from "vitest";
import { connectionFailureOf, safeRequestUrl } from "./connection-failure.js";
import { GitHubUnreachableError } from "./github-errors.js";

/** What octokit throws for a fetch that failed: RequestError(500) ← TypeError("fetch failed") ← the system error. */
function octokitError(systemError: unknown): Error {
  const fetchFailed = new TypeError("fetch failed", { cause: systemError });
  const e = Object.assign(new Error("connect ECONNREFUSED"), { name: "HttpError", status: 500, request: { url: "https://ghe.example/api/v3/x?page=2" } });
  (e as { cause?: unknown }).cause = fetchFailed;
  return e;
}

function sysErr(code: string): Error {
  return Object.assign(new Error(code), { code });
}

describe("connectionFailureOf reads what happened from the cause chain", () => {
  it.each([
    ["ECONNREFUSED", "refused"],
    ["ENOTFOUND", "dns"],
    ["EAI_AGAIN", "dns"],
    ["UND_ERR_CONNECT_TIMEOUT", "timeout"],
    ["ETIMEDOUT", "timeout"],
    ["CERT_HAS_EXPIRED", "tls"],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "tls"],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "tls"],
    ["ECONNRESET", "reset"],
    ["UND_ERR_SOCKET", "reset"],
    ["EHOSTUNREACH", "network"],
  ])("%s is %s", (code, failure) => {
    expect(connectionFailureOf(octokitError(sysErr(code)))).toEqual({ failure, systemCode: code });
  });

  it("an AggregateError (every address of localhost refused) is refused", () => {
    const agg = Object.assign(new AggregateError([sysErr("ECONNREFUSED"), sysErr("ECONNREFUSED")], "all failed"), { code: "ECONNREFUSED" });
    expect(connectionFailureOf(octokitError(agg))?.failure).toBe("refused");
  });

  it("an attempt timeout (AbortSignal.timeout) is a timeout", () => {
    expect(connectionFailureOf(octokitError(new DOMException("timed out", "TimeoutError")))).toEqual({ failure: "timeout" });
  });

  it("an HTTP answer or an unrelated error is not a connection failure", () => {
    expect(connectionFailureOf(Object.assign(new Error("Server Error"), { status: 500 }))).toBeUndefined();
    expect(connectionFailureOf(new RangeError("nope"))).toBeUndefined();
  });
});

describe("the error says what failed and where, never HTTP 500, never a query or token", () => {
  it("names the failure, the system code and the URL without its query", () => {
    const url = safeRequestUrl("https://user:ghp_secret@ghe.example/api/v3/repos/acme/api/actions/runners?per_page=100&page=1", "fallback");
    expect(url).toBe("https://ghe.example/api/v3/repos/acme/api/actions/runners");
    const e = new GitHubUnreachableError({ operation: "listRunners", scope: "acme/api", failure: "refused", systemCode: "ECONNREFUSED", url, attempts: 2 });
    expect(e.code).toBe("GITHUB_UNREACHABLE");
    expect(e.message).toBe(
      "GitHub API unreachable: listRunners (acme/api): connection refused, ECONNREFUSED at https://ghe.example/api/v3/repos/acme/api/actions/runners after 2 attempts",
    );
    expect(e.message).not.toMatch(/500|secret|page=/);
    expect(e.hint).toContain("github.apiUrl");
    expect(e.maybeDelivered).toBe(false);
    expect(new GitHubUnreachableError({ operation: "setCustomLabels", failure: "timeout", url }).maybeDelivered).toBe(true);
  });

  it("an unparsable URL falls back to the route template", () => {
    expect(safeRequestUrl(undefined, "https://api.github.com/repos/{owner}/{repo}")).toBe("https://api.github.com/repos/{owner}/{repo}");
  });
});
