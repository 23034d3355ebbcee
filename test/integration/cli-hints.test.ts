// Every `lanekeeper …` / `lanekeeper-agent …` command named in a string of the product code (hints, recovery
// notes, error messages, status lines) exists: the strings are read with the TypeScript parser (comments are not
// strings), each command is looked up in the real commander program of its CLI by asking it for `--help`.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { main as agentMain } from "../../packages/agent/src/cli.js";
import { runCli as coordinatorMain } from "../../packages/coordinator/src/cli/program.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const SOURCES = ["packages/shared/src", "packages/agent/src", "packages/coordinator/src"];

/** Words that follow "lanekeeper" / "lanekeeper-agent" in prose, not as a command ("the lanekeeper labels"). */
const PROSE = new Set(["agent", "config", "did", "does", "identity", "is", "labels", "lane", "marker", "may", "never", "on", "policy", "prints", "reads", "running", "runs"]);

function* sourceFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) {
      if (e !== "gen") yield* sourceFiles(p);
    } else if (p.endsWith(".ts") && !p.endsWith(".test.ts")) yield p;
  }
}

/** `{program, words, where}` for every command named in a string literal or template text. */
function namedCommands(): { program: "lanekeeper" | "lanekeeper-agent"; words: string[]; where: string }[] {
  const out: { program: "lanekeeper" | "lanekeeper-agent"; words: string[]; where: string }[] = [];
  const named = /\b(lanekeeper(?:-agent)?) ([a-z][a-z-]+)(?: ([a-z][a-z-]+))?/g;
  for (const dir of SOURCES) {
    for (const file of sourceFiles(join(ROOT, dir))) {
      const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
      const visit = (n: ts.Node): void => {
        if (ts.isStringLiteralLike(n) || ts.isTemplateLiteralToken(n)) {
          for (const m of n.text.matchAll(named)) {
            const line = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
            out.push({ program: m[1] as "lanekeeper" | "lanekeeper-agent", words: [m[2]!, ...(m[3] === undefined ? [] : [m[3]])], where: `${file.slice(ROOT.length)}:${line}` });
          }
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
  }
  return out;
}

/** The help of the command `words` of `program`, or `undefined` when there is no such command. */
async function helpOf(program: "lanekeeper" | "lanekeeper-agent", words: readonly string[]): Promise<string | undefined> {
  let out = "";
  const io = { out: (s: string) => void (out += s), err: () => undefined, env: {}, cwd: ROOT, now: () => 0 };
  const code = program === "lanekeeper" ? await coordinatorMain([...words, "--help"], io) : await agentMain([...words, "--help"], io);
  return code === 0 && out.includes(`Usage: ${program} ${words.join(" ")}`) ? out : undefined;
}

describe("commands named in hints and messages", () => {
  it("exist in their CLI", async () => {
    const named = namedCommands();
    expect(named.length).toBeGreaterThan(30);
    const missing: string[] = [];
    for (const { program, words, where } of named) {
      if (PROSE.has(words[0]!)) continue;
      const help = await helpOf(program, words.slice(0, 1));
      // A second word is part of the command only under a command group ("lanekeeper keys rotate"); after a
      // plain command it is prose ("run lanekeeper plan again").
      const cmd = help !== undefined && /^Commands:/m.test(help) && words.length > 1 ? words : words.slice(0, 1);
      if (help === undefined || (cmd.length > 1 && (await helpOf(program, cmd)) === undefined)) missing.push(`${where}: ${program} ${cmd.join(" ")}`);
    }
    expect(missing).toEqual([]);
  });
});
