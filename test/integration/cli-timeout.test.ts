/**
 * Every coordinator command is bounded: against a "NATS server" that accepts the TCP connection and never says
 * a word, the built `lanekeeper status` and `plan` give up at `--timeout` with exit 16 and one
 * `error: … (COMMAND_TIMEOUT)` line naming the NATS URL, instead of hanging (status) or exiting 0 (plan).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateSealingKey, generateSigningKey, signingKeyToPem } from "@lanekeeper/shared";
import { startGitHubEmulator, type GitHubEmulator } from "@lanekeeper/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url));
const TOKEN_ENV = "LK_TEST_GH_TOKEN";

let emu: GitHubEmulator;
let silent: Server;
const sockets: Socket[] = [];
let natsUrl = "";
let dir = "";

function policyText(): string {
  const id = generateSigningKey().publicKey.toString("base64");
  const seal = generateSealingKey().publicKey.toString("base64");
  return (
    `github:\n  apiUrl: ${emu.apiUrl}\n  webUrl: ${emu.url}\n  auth:\n    tokenEnv: ${TOKEN_ENV}\n` +
    `coordinator:\n  keyFile: ${JSON.stringify(join(dir, "coordinator.pem"))}\n  natsUrl: ${natsUrl}\n` +
    `hosts:\n  build01:\n    enrolled:\n      identityKey: ${id}\n      sealingKey: ${seal}\n    optIn: true\n    capacity: 2\n` +
    "scopes:\n  acme/web:\n    optIn: true\n" +
    "pools:\n  linux-x64:\n    labels: [linux, x64]\n    backend: systemd\n    runnerVersion: 2.330.0\n" +
    "lanes:\n  - scope: acme/web\n    pool: linux-x64\n    count: 1\n    hosts: [build01]\n"
  );
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { timeout: 60_000, cwd: dir, env: { ...process.env, LANEKEEPER_POLICY: join(dir, "lanekeeper.yaml"), [TOKEN_ENV]: emu.token } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

beforeAll(async () => {
  emu = await startGitHubEmulator({ repos: ["acme/web"] });
  dir = await mkdtemp(join(tmpdir(), "lk-cli-timeout-"));
  silent = createServer((s) => void sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const addr = silent.address();
  if (addr === null || typeof addr === "string") throw new Error("no port");
  natsUrl = `nats://127.0.0.1:${addr.port}`;
  await writeFile(join(dir, "coordinator.pem"), signingKeyToPem(generateSigningKey()), { mode: 0o600 });
  await writeFile(join(dir, "lanekeeper.yaml"), policyText());
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent?.close(r));
  await emu?.stop();
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("a NATS server that accepts and never answers", () => {
  it.each([["status"], ["plan"]])("%s gives up at --timeout with exit 16 naming the NATS URL", async (cmd) => {
    const r = await cli([cmd, "--timeout", "2s"]);
    expect(r.code, r.stderr).toBe(16);
    expect(r.stderr).toMatch(/^error: [^\n]*no answer within 2s while connecting to NATS at nats:\/\/127\.0\.0\.1:\d+[^\n]* \(COMMAND_TIMEOUT\)$/m);
    expect(r.stderr).toContain("hint: ");
    expect(r.ms).toBeLessThan(15_000);
  }, 30_000);
});
