import { readFile } from "node:fs/promises";
import type { GitHubPolicy } from "@lanekeeper/shared";
import { GitHubCredentialError } from "./github-errors.js";
import { OctokitGitHubClient, type GitHubCredential, type OctokitGitHubClientOptions } from "./octokit-github-client.js";
import { RedactedSecret } from "./redacted-secret.js";

/** Where credentials are read from; injectable for tests. */
export interface CredentialSources {
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** @default fs.readFile as UTF-8 */
  readonly readFile?: (path: string) => Promise<string>;
}

/**
 * Resolve the policy's GitHub credential: the token from the environment variable it names, or the GitHub
 * App's private key from its file. Errors say which variable or file to fix and never echo a secret.
 */
export async function resolveGitHubCredential(github: GitHubPolicy, sources: CredentialSources = {}): Promise<GitHubCredential> {
  const env = sources.env ?? process.env;
  const auth = github.auth;
  if ("tokenEnv" in auth) {
    const token = env[auth.tokenEnv];
    if (token === undefined || token.trim() === "") {
      throw new GitHubCredentialError(
        `the environment variable ${auth.tokenEnv} (github.auth.tokenEnv) is not set; export the GitHub token there`,
      );
    }
    return { kind: "token", token: new RedactedSecret(token.trim()) };
  }
  const read = sources.readFile ?? ((p: string): Promise<string> => readFile(p, "utf8"));
  let pem: string;
  try {
    pem = await read(auth.app.privateKeyFile);
  } catch (err) {
    throw new GitHubCredentialError(
      `cannot read the GitHub App private key ${auth.app.privateKeyFile} (github.auth.app.privateKeyFile): ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`,
    );
  }
  if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(pem)) {
    throw new GitHubCredentialError(
      `${auth.app.privateKeyFile} is not a PEM private key; download the App's private key from its GitHub settings page`,
    );
  }
  return { kind: "app", appId: auth.app.appId, privateKey: new RedactedSecret(pem), installationId: auth.app.installationId };
}

/** An {@link OctokitGitHubClient} for the policy's GitHub settings and credential. */
export async function createGitHubClient(
  github: GitHubPolicy,
  options: Omit<OctokitGitHubClientOptions, "apiUrl" | "credential"> & CredentialSources = {},
): Promise<OctokitGitHubClient> {
  const { env, readFile: read, ...rest } = options;
  const credential = await resolveGitHubCredential(github, { ...(env === undefined ? {} : { env }), ...(read === undefined ? {} : { readFile: read }) });
  return new OctokitGitHubClient({ ...rest, apiUrl: github.apiUrl, credential });
}
