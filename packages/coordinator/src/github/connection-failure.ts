import type { GitHubConnectionFailure } from "./github-errors.js";

/** What a request that got no HTTP answer ran into. */
export interface ConnectionFailureFacts {
  readonly failure: GitHubConnectionFailure;
  /** The system's error code, when one was found in the cause chain. */
  readonly systemCode?: string;
}

const DNS = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EAI_NODATA"]);
const TIMEOUT = new Set(["ETIMEDOUT", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);
const RESET = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED", "ECONNABORTED"]);
const NETWORK = new Set(["ENETUNREACH", "EHOSTUNREACH", "ENETDOWN", "EHOSTDOWN", "EADDRNOTAVAIL"]);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|EPROTO$|ERR_OSSL)/;

function classify(code: string): GitHubConnectionFailure | undefined {
  if (code === "ECONNREFUSED") return "refused";
  if (DNS.has(code)) return "dns";
  if (TIMEOUT.has(code)) return "timeout";
  if (TLS_CODE.test(code)) return "tls";
  if (RESET.has(code)) return "reset";
  if (NETWORK.has(code)) return "network";
  return undefined;
}

/** The errors an error was caused by, outermost first (`cause` chains and `AggregateError.errors`), at most 16. */
function causeChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 16) {
    const e = queue.shift();
    if (e === undefined || e === null || out.includes(e)) continue;
    out.push(e);
    if (typeof e !== "object") continue;
    const cause = (e as { cause?: unknown }).cause;
    if (cause !== undefined) queue.push(cause);
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) queue.push(...(errors as unknown[]));
  }
  return out;
}

/**
 * Whether a failed request got no HTTP answer, and why: read from the error's cause chain (undici puts the
 * system error under `fetch failed`, octokit wraps that in a `RequestError` with status 500). Undefined when the
 * error is not a connection failure (GitHub answered, or something else went wrong).
 */
export function connectionFailureOf(err: unknown): ConnectionFailureFacts | undefined {
  const chain = causeChain(err);
  for (const e of chain) {
    const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
    if (typeof code !== "string") continue;
    const failure = classify(code);
    if (failure !== undefined) return { failure, systemCode: code };
  }
  for (const e of chain) {
    const name = e instanceof Error || (typeof e === "object" && e !== null) ? (e as { name?: unknown }).name : undefined;
    // AbortSignal.timeout() aborts with a TimeoutError; an abort of ours (the call's time budget) with an AbortError.
    if (name === "TimeoutError" || name === "AbortError") return { failure: "timeout" };
  }
  // `fetch failed` with no code we know: still no HTTP answer.
  if (chain.some((e) => e instanceof TypeError && e.message === "fetch failed")) return { failure: "network" };
  return undefined;
}

/** Origin and path of a request URL: no query string, no credentials, no fragment. */
export function safeRequestUrl(url: unknown, fallback: string): string {
  if (typeof url !== "string") return fallback;
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return fallback;
  }
}
