/**
 * `startGitHubEmulator`: one `node:http` server with four faces —
 * `/api/v3/...` GitHub's REST API, `/_runner/...` the runner protocol, `/_emulator/...` the control API,
 * and `/<owner>/<repo>` or `/<org>` as minimal web pages (the URLs runners are configured with).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { controlRouter } from "./control-api.js";
import { EmulatorControl } from "./control-client.js";
import { EmulatorCore } from "./core.js";
import { HttpError } from "./errors.js";
import { resolveEmulatorOptions, type GitHubEmulatorOptions } from "./options.js";
import { StateFile } from "./persistence.js";
import { internalError, RestApi } from "./rest-api.js";
import { bodyText, exchangeOf, send, type Router } from "./router.js";
import { runnerProtocolRouter } from "./runner-protocol.js";

/** A running emulator. */
export interface GitHubEmulator {
  /** Base (web) URL, e.g. `http://127.0.0.1:40123`; runners use `${url}/<owner>/<repo>` as `--url`. */
  readonly url: string;
  /** REST base URL (`${url}/api/v3`), the `baseUrl` for `@octokit/rest`. */
  readonly apiUrl: string;
  /** The admin token. */
  readonly token: string;
  /** The TCP port. */
  readonly port: number;
  /** Typed client of the control API. */
  readonly control: EmulatorControl;
  /**
   * Web URL of `owner/name` or of an organization (`org` or lanekeeper's policy form `org:<org>`), e.g. for a
   * runner's `--url`.
   */
  webUrl(scope: string): string;
  /** Closes every connection and the server; flushes the state file. Idempotent. */
  stop(): Promise<void>;
}

/** Starts an emulator; resolves once it listens. */
export async function startGitHubEmulator(options: GitHubEmulatorOptions = {}): Promise<GitHubEmulator> {
  const opts = resolveEmulatorOptions(options);
  let stateFile: StateFile | undefined;
  const core = new EmulatorCore(opts, () => stateFile?.changed());
  if (opts.stateFile !== undefined) {
    stateFile = new StateFile(opts.stateFile, () => core.state.snapshot());
    const saved = stateFile.load();
    if (saved) {
      core.state.restore(saved);
      // Sessions survive a restart; give their runners a full offline window to poll again.
      for (const s of core.state.sessions.values()) s.lastPollAt = opts.clock.now();
      core.seedScopes();
    }
    stateFile.changed();
  }
  const rest = new RestApi(core);
  const runnerRouter = runnerProtocolRouter(core);
  const control = controlRouter(core);

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => internalError(res, err));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", core.urls.web);
    const path = url.pathname;
    if (path === "/api/v3" || path.startsWith("/api/v3/")) return rest.handle(req, res, url, path.slice("/api/v3".length) || "/");
    if (path.startsWith("/_runner/")) {
      core.broker.sweepBeforeRequest();
      return serveSimple(runnerRouter, req, res, url, path.slice("/_runner".length), (route) => core.stats.runnerCall(`${req.method} /_runner${route}`), true);
    }
    if (path.startsWith("/_emulator/")) return serveSimple(control, req, res, url, path.slice("/_emulator".length));
    if (path.startsWith("/_downloads/") && core.releases.serve(req, res, path)) return;
    return serveWebPage(req, res, path);
  }

  function serveWebPage(req: IncomingMessage, res: ServerResponse, path: string): void {
    let parts: string[];
    try {
      parts = path.split("/").filter((p) => p !== "").map(decodeURIComponent);
    } catch {
      parts = [];
    }
    const scope = parts.length === 2 ? core.registry.repoScope(parts[0] as string, parts[1] as string) : parts.length === 1 ? core.registry.orgScope(parts[0] as string) : undefined;
    if ((req.method !== "GET" && req.method !== "HEAD") || !scope) {
      send(res, 404, "Not Found\n", { "content-type": "text/plain; charset=utf-8" });
      return;
    }
    const title = scope.kind === "repo" ? `${scope.repo.owner}/${scope.repo.name}` : scope.org.login;
    send(res, 200, `<!doctype html><title>${title}</title><h1>${title}</h1>\n`, { "content-type": "text/html; charset=utf-8" });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  core.urls = { web: `http://${host}:${port}`, api: `http://${host}:${port}/api/v3` };
  const sweeper = setInterval(() => core.broker.sweep(), Math.max(20, Math.min(250, Math.floor(core.offlineAfterMs() / 4))));
  sweeper.unref();

  let stopping: Promise<void> | undefined;
  return {
    url: core.urls.web,
    apiUrl: core.urls.api,
    token: opts.token,
    port,
    control: new EmulatorControl(core.urls.web),
    // A colon is never part of a GitHub login, so `org:` can only be the policy's organization prefix.
    webUrl: (scope: string) => `${core.urls.web}/${scope.replace(/^org:/, "")}`,
    stop: () => (stopping ??= stop(server, core, sweeper, stateFile)),
  };
}

async function stop(server: Server, core: EmulatorCore, sweeper: NodeJS.Timeout, stateFile: StateFile | undefined): Promise<void> {
  clearInterval(sweeper);
  core.traces.clear();
  core.broker.shutdown();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
  core.webhooks.flushLate();
  await core.webhooks.idle();
  await stateFile?.flush();
}

/** Serves a request of the runner protocol or the control API: no auth pipeline, no rate limits. */
async function serveSimple(
  router: Router,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  path: string,
  count?: (template: string) => void,
  messageOnly = false,
): Promise<void> {
  const match = router.match(req.method ?? "GET", path);
  if (match.kind !== "found") {
    send(res, match.kind === "none" ? 404 : 405, JSON.stringify({ message: `No route ${req.method} ${url.pathname}` }), {});
    return;
  }
  count?.(match.route.template);
  try {
    const reply = await match.route.handler(exchangeOf(req, res, url, { template: match.route.template, params: match.params }));
    send(res, reply.status, bodyText(reply), reply.headers ?? {});
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    // The runner protocol's errors are exactly `{message}`, even when the model raised a GitHub-shaped body.
    send(res, err.status, JSON.stringify(messageOnly ? { message: err.message } : err.body), err.headers);
  }
}
