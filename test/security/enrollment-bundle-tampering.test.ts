// Issue 12: an enrollment bundle that cannot be mis-copied. The real `lanekeeper-agent init` prints the bundle
// (YAML, and JSON with --json); a few characters changed in a public key, in transit or on purpose, must make the
// real `lanekeeper hosts add` refuse it with ENROLLMENT_INVALID and a reason, and leave the policy file as it was.
// Before key ids were fields, four changed characters in the YAML identity key enrolled a different key.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { keyIdOf, parsePolicy, parseSealingPublicKey, parseSigningPublicKey, sealingKeyFromPem, signingKeyFromPem } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const agentBin = fileURLToPath(new URL("../../packages/agent/bin/lanekeeper-agent.js", import.meta.url));
const coordinatorBin = fileURLToPath(new URL("../../packages/coordinator/bin/lanekeeper.js", import.meta.url));
const POLICY =
  "# operator's policy: hosts add must leave it byte for byte as it was when it refuses a bundle\n" +
  "github:\n  auth: { tokenEnv: GITHUB_TOKEN }\n" +
  "coordinator:\n  keyFile: /etc/lanekeeper/coordinator.key\n  natsUrl: nats://127.0.0.1:4222\n" +
  "hosts: {}\n";

let dir: string;
let yamlBundle: string;
let jsonBundle: string;
let identityKeyId: string;
let sealingKeyId: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(bin: string, args: string[]): Promise<Run> {
  try {
    const r = await run(process.execPath, [bin, ...args], { cwd: dir, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** Change four characters of the base64 key on the line `field: <key>` (still 32 bytes of valid base64). */
function tamper(text: string, field: "identityKey" | "sealingKey"): string {
  const re = new RegExp(`("?${field}"?:\\s*"?)([A-Za-z0-9+/]{43}=)`);
  const m = re.exec(text);
  if (m === null) throw new Error(`no ${field} in the bundle:\n${text}`);
  const key = m[2] ?? "";
  const changed = [...key].map((c, i) => (i >= 10 && i < 14 ? (c === "A" ? "B" : "A") : c)).join("");
  expect(changed).not.toBe(key);
  return text.replace(key, changed);
}

/** `hosts add` of `bundleText` against a fresh policy; returns the run and the policy text afterwards. */
async function hostsAdd(name: string, bundleText: string, extra: string[] = []): Promise<{ r: Run; policy: string }> {
  const policyPath = join(dir, `${name}.policy.yaml`);
  await writeFile(policyPath, POLICY);
  await writeFile(join(dir, name), bundleText);
  const r = await cli(coordinatorBin, ["hosts", "add", name, "--policy", policyPath, ...extra]);
  return { r, policy: await readFile(policyPath, "utf8") };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-bundle-"));
  const init = async (host: string, json: boolean): Promise<string> => {
    const args = ["init", "--host-id", host, "--config", join(dir, host, "agent.yaml"), "--state-dir", join(dir, host, "state")];
    const r = await cli(agentBin, json ? [...args, "--json"] : args);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  yamlBundle = await init("build01", false);
  jsonBundle = await init("build02", true);
  const state = join(dir, "build01", "state");
  identityKeyId = signingKeyFromPem(await readFile(join(state, "identity.key"), "utf8")).keyId;
  sealingKeyId = sealingKeyFromPem(await readFile(join(state, "sealing.key"), "utf8")).keyId;
}, 120_000);

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("enrollment bundle tampering", () => {
  it("prints the key ids and optIn as fields, not comments", () => {
    expect(yamlBundle).toMatch(new RegExp(`^identityKeyId: ${identityKeyId}$`, "m"));
    expect(yamlBundle).toMatch(new RegExp(`^sealingKeyId: ${sealingKeyId}$`, "m"));
    expect(yamlBundle).toMatch(/^optIn: false$/m);
    expect(JSON.parse(jsonBundle)).toMatchObject({ hostId: "build02", optIn: false });
  });

  it.each([
    ["YAML", "identityKey"],
    ["YAML", "sealingKey"],
    ["JSON", "identityKey"],
    ["JSON", "sealingKey"],
  ] as const)("refuses four changed characters in the %s bundle's %s and writes nothing", async (form, field) => {
    const text = tamper(form === "YAML" ? yamlBundle : jsonBundle, field);
    const { r, policy } = await hostsAdd(`tampered-${form}-${field}`, text, ["--opt-in"]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain("enrollment bundle refused (KEY_ID_MISMATCH)");
    expect(r.stderr).toContain(`${field} does not match ${field}Id`);
    expect(r.stderr).toContain("copy it again from the host");
    expect(policy).toBe(POLICY);
  });

  it("refuses a changed key id, and a bundle that opts itself in, with their reasons in --json", async () => {
    const wrongId = yamlBundle.replace(identityKeyId, "f".repeat(64));
    const a = await hostsAdd("wrong-id.yaml", wrongId, ["--json"]);
    expect(a.r.code).toBe(6);
    expect(JSON.parse(a.r.stdout)).toMatchObject({ error: { code: "ENROLLMENT_INVALID", message: expect.stringContaining("(KEY_ID_MISMATCH)") } });
    expect(a.policy).toBe(POLICY);
    const optedIn = await hostsAdd("opted-in.yaml", yamlBundle.replace(/^optIn: false$/m, "optIn: true"), ["--json"]);
    expect(optedIn.r.code).toBe(6);
    expect(JSON.parse(optedIn.r.stdout)).toMatchObject({ error: { code: "ENROLLMENT_INVALID", message: expect.stringContaining("(OPT_IN)") } });
    expect(optedIn.policy).toBe(POLICY);
  });

  it("enrolls the untouched bundle with exactly the agent's keys, opted out as the bundle says", async () => {
    const { r, policy } = await hostsAdd("good.yaml", yamlBundle);
    expect(r.code, r.stderr).toBe(0);
    const host = parsePolicy(policy).hosts.build01;
    expect(host?.optIn).toBe(false);
    expect(keyIdOf(parseSigningPublicKey(host?.enrolled.identityKey ?? ""))).toBe(identityKeyId);
    expect(keyIdOf(parseSealingPublicKey(host?.enrolled.sealingKey ?? ""))).toBe(sealingKeyId);
  });
});
