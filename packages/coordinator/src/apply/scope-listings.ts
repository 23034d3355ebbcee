import type { GitHubClient } from "../github/github-client.js";
import type { RunnerList } from "../github/github-types.js";

/**
 * One scope's runner listing shared by the actions that read it at about the same time. A read waits `batchMs`,
 * then one request answers every read of the scope that arrived meanwhile; since the request starts after each of
 * them asked, each gets a listing as fresh as its own request would have been. A fleet created from empty
 * verified each lane online with a GET of its runner and checked its lane id with a listing of its scope: two
 * requests per lane (20,000 lanes: 40,000 requests, beyond an App's 15,000 an hour). Creates of one scope run
 * side by side (the plan lists a scope's lanes together), so one listing now serves many of them.
 */
export class ScopeListings {
  private readonly next = new Map<string, Promise<RunnerList>>();

  constructor(
    private readonly github: Pick<GitHubClient, "listRunners">,
    private readonly sleep: (ms: number) => Promise<void>,
    private readonly batchMs: number,
  ) {}

  /** A listing of `scope` whose request starts after this call. */
  listing(scope: string): Promise<RunnerList> {
    let p = this.next.get(scope);
    if (p === undefined) {
      p = this.sleep(this.batchMs).then(() => {
        // From here on, a new read waits for a request of its own.
        this.next.delete(scope);
        return this.github.listRunners(scope);
      });
      this.next.set(scope, p);
    }
    return p;
  }
}
