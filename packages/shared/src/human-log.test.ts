import { describe, expect, it } from "vitest";
import { humanLogDestination, renderLogLine } from "./human-log.js";
import { createLogger } from "./logger.js";

describe("human log lines", () => {
  it("renders a pino line as level, component, message and fields, secrets still redacted", () => {
    const out: string[] = [];
    const log = createLogger({ component: "lanekeeper", level: "info", destination: humanLogDestination((s) => out.push(s), "lanekeeper") });
    log.warn({ kind: "secondary", route: "/repos/{owner}/{repo}/actions/runners", retryAfterSeconds: 1, willRetry: true }, "GitHub secondary rate limit hit");
    log.child({ component: "github" }).error({ err: new Error("boom\nsecond line"), token: "ghp_secret", nested: { a: [1, 2] } }, "request failed");
    log.debug("not shown");
    expect(out).toEqual([
      'warn: GitHub secondary rate limit hit (kind=secondary, route=/repos/{owner}/{repo}/actions/runners, retryAfterSeconds=1, willRetry=true)\n',
      'error: github: request failed (err="boom\\nsecond line", token=[redacted], nested={"a":[1,2]})\n',
    ]);
    expect(out.join("")).not.toContain("ghp_secret");
  });

  it("never lets a line start with {, whatever it is given", () => {
    expect(renderLogLine('{"level":30,"msg":"plain"}')).toBe("info: plain");
    expect(renderLogLine("{not json")).toBe("log: {not json");
    expect(renderLogLine("[1,2]")).toBe("log: [1,2]");
    expect(renderLogLine(JSON.stringify({ level: 40, msg: "big", v: "x".repeat(500) })).length).toBeLessThan(230);
  });
});
