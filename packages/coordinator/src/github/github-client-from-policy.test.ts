import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { generateKeyPairSync, verify } from "node:crypto";
import type { GitHubPolicy } from "@lanekeeper/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitHubClient, resolveGitHubCredential } from "./github-client-from-policy.js";

const tokenPolicy = (apiUrl: string): GitHubPolicy => ({ apiUrl, webUrl: "https://github.com", auth: { tokenEnv: "LK_TEST_TOKEN" } });

describe("resolveGitHubCredential", () => {
  it("reads the token from the named variable and says which one is missing", async () => {
    const c = await resolveGitHubCredential(tokenPolicy("https://x"), { env: { LK_TEST_TOKEN: " ghp_secret " } });
    expect(c.kind === "token" && c.token.reveal()).toBe("ghp_secret");
    const err = await resolveGitHubCredential(tokenPolicy("https://x"), { env: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "GITHUB_CREDENTIAL" });
    expect((err as Error).message).toContain("LK_TEST_TOKEN");
  });

  it("refuses an App key file that is missing or not a PEM key, without echoing its content", async () => {
    const app: GitHubPolicy = { apiUrl: "https://x", webUrl: "https://y", auth: { app: { appId: 1, privateKeyFile: "/nope/key.pem", installationId: 2 } } };
    await expect(resolveGitHubCredential(app)).rejects.toMatchObject({ code: "GITHUB_CREDENTIAL" });
    const err = await resolveGitHubCredential(app, { readFile: () => Promise.resolve("hunter2-not-a-key") }).catch((e: unknown) => e);
    expect((err as Error).message).not.toContain("hunter2");
  });
});

describe("GitHub App authentication (wiring, against a local HTTP server)", () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const seen: { method: string; url: string; auth: string }[] = [];
  let jwtValid = false;
  let server: Server;
  let apiUrl = "";

  const body = async (req: IncomingMessage): Promise<string> => {
    let s = "";
    for await (const chunk of req) s += String(chunk);
    return s;
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      void body(req).then(() => {
        const auth = req.headers.authorization ?? "";
        seen.push({ method: req.method ?? "", url: req.url ?? "", auth });
        if (req.method === "POST" && req.url === "/api/v3/app/installations/77/access_tokens") {
          // The JWT must be RS256-signed by the App key and name the App as issuer.
          const jwt = auth.replace(/^bearer /i, "");
          const [h = "", p = "", s = ""] = jwt.split(".");
          const payload = JSON.parse(Buffer.from(p, "base64url").toString()) as { iss: string | number };
          jwtValid =
            verify("RSA-SHA256", Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, "base64url")) && String(payload.iss) === "4242";
          res.writeHead(201, { "content-type": "application/json" });
          res.end(JSON.stringify({ token: "ghs_installation_token", expires_at: new Date(Date.now() + 3_600_000).toISOString(), permissions: {} }));
          return;
        }
        res.writeHead(200, { "content-type": "application/json", "x-ratelimit-remaining": "4999", "x-ratelimit-reset": "9999999999" });
        res.end(JSON.stringify({ total_count: 0, runners: [] }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v3`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("signs a JWT with the App key, exchanges it for an installation token, and uses that token", async () => {
    const client = await createGitHubClient(
      { apiUrl, webUrl: "https://github.com", auth: { app: { appId: 4242, privateKeyFile: "/etc/lk/app.pem", installationId: 77 } } },
      { readFile: () => Promise.resolve(pem) },
    );
    const list = await client.listRunners("acme/api");
    expect(list.runners).toEqual([]);
    expect(jwtValid).toBe(true);
    const get = seen.find((r) => r.method === "GET");
    expect(get?.url).toContain("/api/v3/repos/acme/api/actions/runners");
    expect(get?.auth).toBe("token ghs_installation_token");
    expect(client.metrics().requests).toBe(2);
  });
});
