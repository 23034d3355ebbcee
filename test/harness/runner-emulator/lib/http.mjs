// A tiny JSON-over-HTTP client for the emulator's `/_runner/` protocol (test/harness/docs/runner-protocol.md).
// node:http only, so the runner directory needs nothing but `node`.

import http from "node:http";
import https from "node:https";

/** Raised for transport failures (refused, reset, timeout); HTTP statuses are returned, not thrown. */
export class TransportError extends Error {
  constructor(message, cause) {
    super(message, { cause });
    this.name = "TransportError";
  }
}

/**
 * Sends one request. Resolves `{status, body, text}` for any HTTP status (body parsed as JSON when possible).
 * Rejects with {@link TransportError} on network failure or timeout, or with an `AbortError` when `signal`
 * fires.
 */
export function request(method, url, { auth, body, signal, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    let target;
    try {
      target = new URL(url);
    } catch {
      reject(new TransportError(`Invalid URL: ${url}`));
      return;
    }
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { "user-agent": "GitHubActionsRunner-linux-x64/2.336.0 (lanekeeper-emulator)", accept: "application/json" };
    if (auth) headers.authorization = auth;
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }
    const lib = target.protocol === "https:" ? https : http;
    const req = lib.request(target, { method, headers, signal, agent: false });
    const timer = setTimeout(() => req.destroy(new TransportError(`The request timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on("response", (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed;
        try {
          parsed = text === "" ? undefined : JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text });
      });
      res.on("error", (e) => {
        clearTimeout(timer);
        reject(new TransportError(e.message, e));
      });
    });
    req.on("error", (e) => {
      clearTimeout(timer);
      if (e && e.name === "AbortError") reject(e);
      else reject(e instanceof TransportError ? e : new TransportError(e.message, e));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** The HTTP reason phrase .NET prints for a status, e.g. `Unauthorized`. */
export function statusName(status) {
  const names = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
  };
  return names[status] ?? String(status);
}

/** `HttpResponseMessage.EnsureSuccessStatusCode`'s message. */
export function ensureSuccessMessage(status) {
  const phrase = http.STATUS_CODES[status] ?? "Unknown";
  return `Response status code does not indicate success: ${status} (${phrase}).`;
}
