/**
 * `lk-github-emulator`: runs the emulator until SIGINT/SIGTERM. Prints one line with its base URL when
 * ready. Exit codes: 0 after a signal, 2 for bad arguments, 1 when it cannot start.
 */
import { parseArgs } from "node:util";
import { GitHubEmulatorError } from "./errors.js";
import type { GitHubEmulatorOptions } from "./options.js";
import { parseRealismSetting } from "./realism.js";
import { startGitHubEmulator } from "./server.js";

const USAGE = `Usage: lk-github-emulator --token T [options]

  --port N                 TCP port, 0 picks a free one (default 0)
  --host ADDR              listen address (default 127.0.0.1)
  --token T                admin token accepted by the REST API (required)
  --repo OWNER/NAME        serve a repository (repeatable)
  --org NAME               serve an organization (repeatable)
  --offline-after-ms N     a runner session without a poll for N ms goes offline (default 3000)
  --state-file PATH        persist state as JSON (atomic writes), reload it at start
  --webhook-url URL        deliver workflow_job webhooks here
  --webhook-secret S       sign webhooks (X-Hub-Signature-256)
  --token-ttl-ms N         lifetime of registration/remove tokens (default 3600000)
  --rate-limit N           primary rate limit per token and hour (default 5000)
  --realism MODE           GitHub's imperfections: off (default), on (busy lag 2 s each way, a killed
                           runner online 10 s more, 5% of webhooks dropped, 10% 1.5-3 s late), or a
                           JSON object overriding "on" field by field, e.g. '{"webhookDropRate":0.2}'

Ready line: "lk-github-emulator ready <base URL> api=<base URL>/api/v3"`;

function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new GitHubEmulatorError("OPTIONS_INVALID", `--${name}: expected a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Parses the command line into emulator options; throws `OPTIONS_INVALID`. */
export function parseCliArgs(argv: readonly string[]): GitHubEmulatorOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        token: { type: "string" },
        repo: { type: "string", multiple: true },
        org: { type: "string", multiple: true },
        "offline-after-ms": { type: "string" },
        "state-file": { type: "string" },
        "webhook-url": { type: "string" },
        "webhook-secret": { type: "string" },
        "token-ttl-ms": { type: "string" },
        "rate-limit": { type: "string" },
        realism: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new GitHubEmulatorError("OPTIONS_INVALID", (err as Error).message);
  }
  if (values.help) return "help";
  if (values.token === undefined) throw new GitHubEmulatorError("OPTIONS_INVALID", "--token is required");
  const options: GitHubEmulatorOptions = { token: values.token, repos: values.repo ?? [], orgs: values.org ?? [] };
  const set = <K extends keyof GitHubEmulatorOptions>(k: K, v: GitHubEmulatorOptions[K] | undefined): void => {
    if (v !== undefined) options[k] = v;
  };
  set("port", int("port", values.port));
  set("host", values.host);
  set("offlineAfterMs", int("offline-after-ms", values["offline-after-ms"]));
  set("stateFile", values["state-file"]);
  set("webhookUrl", values["webhook-url"]);
  set("webhookSecret", values["webhook-secret"]);
  set("tokenTtlMs", int("token-ttl-ms", values["token-ttl-ms"]));
  set("rateLimitPerHour", int("rate-limit", values["rate-limit"]));
  if (values.realism !== undefined) options.realism = { ...parseRealismSetting(values.realism, "--realism") };
  return options;
}

/** Runs the command; resolves with the exit code once it should exit. */
export async function runCli(argv: readonly string[]): Promise<number> {
  let options: GitHubEmulatorOptions | "help";
  try {
    options = parseCliArgs(argv);
  } catch (err) {
    process.stderr.write(`lk-github-emulator: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let emulator;
  try {
    emulator = await startGitHubEmulator(options);
  } catch (err) {
    const usage = err instanceof GitHubEmulatorError && err.code === "OPTIONS_INVALID";
    process.stderr.write(`lk-github-emulator: ${(err as Error).message}\n`);
    return usage ? 2 : 1;
  }
  process.stdout.write(`lk-github-emulator ready ${emulator.url} api=${emulator.apiUrl}\n`);
  const running = emulator;
  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      resolve();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  await running.stop();
  return 0;
}
