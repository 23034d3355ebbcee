import { describe, expect, it } from "vitest";
import { GitHubForbiddenError } from "./github-errors.js";

describe("GitHubForbiddenError", () => {
  it("names the repository and the permission to grant", () => {
    const e = new GitHubForbiddenError({ operation: "listRunners", scope: "acme/api", status: 403, githubMessage: "Resource not accessible by personal access token", acceptedPermissions: "administration=read" });
    expect(e.code).toBe("GITHUB_FORBIDDEN");
    expect(e.message).toBe(
      "listRunners (acme/api) failed with HTTP 403: Resource not accessible by personal access token. The credential lacks admin rights on " +
        "repository acme/api: a classic token needs the repo scope and its user admin rights on the repository; a fine-grained token or GitHub App " +
        'needs the repository permission "Administration: read and write" (GitHub asked for administration=read)',
    );
    expect(e.details).toMatchObject({ acceptedPermissions: "administration=read", scope: "acme/api" });
  });

  it("names the organization permission for org scopes, and Actions: read for workflow runs", () => {
    const org = new GitHubForbiddenError({ operation: "createRegistrationToken", scope: "org:acme", status: 403 });
    expect(org.message).toContain('organization acme: a classic token needs the admin:org scope');
    expect(org.message).toContain('"Self-hosted runners: read and write"');
    expect(org.message).not.toContain("Administration");
    const runs = new GitHubForbiddenError({ operation: "listWorkflowRuns", scope: "acme/api", status: 403, acceptedPermissions: "actions=read" });
    expect(runs.message).toContain('"Actions: read"');
  });
});
