import { ConfigError, generateSealingKey, generateSigningKey, parsePolicy } from "@lanekeeper/shared";

/** What {@link onePoolPolicyYaml} puts in: YAML text, indented as the comments say. */
export interface OnePoolPolicyParts {
  /** Extra lines of pool `linux` (indented 4 spaces), e.g. `"    upgrade: { maxUnavailable: 2 }\n"`. */
  readonly pool?: string;
  /** The one lanes entry after `scope`, `pool` and `hosts` (indented 4 spaces), e.g. `"    count: 2\n"`. */
  readonly lane: string;
}

const identityKey = generateSigningKey().publicKey.toString("base64");
const sealingKey = generateSealingKey().publicKey.toString("base64");

/**
 * A small valid policy (one opted-in host build01 of capacity 6, scope acme/api, systemd pool linux) with the
 * pool's extra settings and the lane's count or scaling given: for tests of one part of the policy's rules.
 */
export function onePoolPolicyYaml(parts: OnePoolPolicyParts): string {
  return `
github:
  auth: { tokenEnv: GITHUB_TOKEN }
coordinator:
  keyFile: /etc/lanekeeper/coordinator.key
  natsUrl: nats://127.0.0.1:4222
hosts:
  build01:
    enrolled: { identityKey: "${identityKey}", sealingKey: "${sealingKey}" }
    optIn: true
    capacity: 6
scopes:
  acme/api: { optIn: true }
pools:
  linux:
    labels: [linux, x64]
    backend: systemd
    runnerVersion: 2.330.0
${parts.pool ?? ""}lanes:
  - scope: acme/api
    pool: linux
    hosts: [build01]
${parts.lane}`;
}

/** The `path: message` lines of the ConfigError `parsePolicy(text)` throws; fails when it parses. */
export function policyIssues(text: string): string[] {
  try {
    parsePolicy(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(({ path, message }) => `${path}: ${message}`);
    throw err;
  }
  throw new Error("expected a ConfigError");
}
