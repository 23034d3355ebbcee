/**
 * A small path-template router (`/repos/{owner}/{repo}/actions/runners/{runner_id}`) plus the request and
 * response plumbing the three APIs (REST, runner protocol, control) share.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { HttpError, type JsonBody } from "./errors.js";
import { MAX_REQUEST_BODY_BYTES } from "./limits.js";

/** One request as handlers see it. */
export interface Exchange {
  method: string;
  /** The full request URL (query included). */
  url: URL;
  /** Path template parameters, URL-decoded. */
  params: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The route template that matched, e.g. `/repos/{owner}/{repo}/actions/runners`. */
  template: string;
  /** Aborted when the client goes away before the response is sent. */
  signal: AbortSignal;
  /** The parsed JSON body (`undefined` when empty); 400 on malformed JSON. */
  json(): Promise<unknown>;
}

/** What a handler returns. */
export interface Reply {
  status: number;
  body?: JsonBody;
  headers?: Record<string, string>;
}

/** A route handler; `X` is the exchange type of the API (the REST API adds the caller's identity). */
export type Handler<X = Exchange> = (x: X) => Reply | Promise<Reply>;

interface Route<X> {
  method: string;
  template: string;
  segments: string[];
  handler: Handler<X>;
}

/** Outcome of {@link Router.match}. */
export type Match<X> =
  | { kind: "found"; route: { template: string; handler: Handler<X> }; params: Record<string, string> }
  | { kind: "method-not-allowed" }
  | { kind: "none" };

/** Routes by method and path template; literal segments win over parameters. */
export class Router<X = Exchange> {
  private readonly routes: Route<X>[] = [];

  /** Registers a route. */
  add(method: string, template: string, handler: Handler<X>): this {
    this.routes.push({ method, template, segments: template.split("/").filter((s) => s !== ""), handler });
    // Literal segments first, so `/runners/downloads` beats `/runners/{runner_id}`.
    this.routes.sort((a, b) => specificity(b) - specificity(a));
    return this;
  }

  /** Finds the route for a method and a raw (still encoded) path. */
  match(method: string, rawPath: string): Match<X> {
    let parts: string[];
    try {
      parts = rawPath.split("/").filter((s) => s !== "").map(decodeURIComponent);
    } catch {
      return { kind: "none" };
    }
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      pathMatched = true;
      if (route.method === method) return { kind: "found", route, params };
    }
    return pathMatched ? { kind: "method-not-allowed" } : { kind: "none" };
  }
}

function specificity(route: { segments: string[] }): number {
  return route.segments.reduce((n, s, i) => n + (s.startsWith("{") ? 0 : 2 ** (20 - i)), 0);
}

function matchSegments(template: string[], parts: string[]): Record<string, string> | undefined {
  if (template.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const t = template[i] as string;
    const p = parts[i] as string;
    if (t.startsWith("{")) params[t.slice(1, -1)] = p;
    else if (t !== p) return undefined;
  }
  return params;
}

/** Reads a request body up to the size limit; 413 beyond it. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_REQUEST_BODY_BYTES) throw new HttpError(413, { message: "Request body too large" });
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** Builds the {@link Exchange} of a request; `json()` reads the body once. */
export function exchangeOf(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  match: { template: string; params: Record<string, string> },
): Exchange {
  const controller = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) controller.abort();
  });
  let parsed: Promise<unknown> | undefined;
  return {
    method: req.method ?? "GET",
    url,
    params: match.params,
    headers: req.headers,
    template: match.template,
    signal: controller.signal,
    json: () => {
      parsed ??= readBody(req).then((buf) => {
        const text = buf.toString("utf8").trim();
        if (text === "") return undefined;
        try {
          return JSON.parse(text) as unknown;
        } catch {
          throw new HttpError(400, { message: "Problems parsing JSON", documentation_url: "https://docs.github.com/rest", status: "400" });
        }
      });
      return parsed;
    },
  };
}

/** Writes a JSON (or empty) response. */
export function send(res: ServerResponse, status: number, body: string | undefined, headers: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  const all: Record<string, string> = { ...headers };
  if (body !== undefined) {
    all["content-type"] ??= "application/json; charset=utf-8";
    all["content-length"] = String(Buffer.byteLength(body));
  }
  res.writeHead(status, all);
  res.end(body);
}

/** Serializes a reply body (undefined for 204/304 or no body). */
export function bodyText(reply: Reply): string | undefined {
  return reply.body === undefined ? undefined : JSON.stringify(reply.body);
}
