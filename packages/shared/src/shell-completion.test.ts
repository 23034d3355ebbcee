import { describe, expect, it } from "vitest";
import { bashCompletion, zshCompletion, type CompletionCommand, type CompletionOption } from "./shell-completion.js";

// The shape commander's Command has; the real CLIs' scripts are run in a real bash by test/integration/cli-meta.test.ts.
function cmd(name: string, description: string, options: CompletionOption[] = [], commands: CompletionCommand[] = [], argChoices?: string[]): CompletionCommand {
  return {
    name: () => name,
    description: () => description,
    options,
    commands,
    registeredArguments: argChoices === undefined ? [] : [{ argChoices }],
  };
}

const program = cmd(
  "tool",
  "a tool",
  [{ long: "--version", short: "-V", description: "print the version" }],
  [
    cmd("lanes", "lane commands", [], [cmd("drain", "drain: it's a lane", [{ long: "--deadline", description: "how long", required: true }, { long: "--force", description: "force" }])]),
    cmd("completion", "scripts", [], [], ["bash", "zsh"]),
    cmd("out", "output", [{ long: "--format", description: "fmt", required: true, argChoices: ["table", "json"] }, { long: "--secret", description: "hidden", hidden: true }]),
  ],
);

describe("bashCompletion", () => {
  const script = bashCompletion(program);

  it("walks every command path and offers its subcommands, options and argument choices", () => {
    expect(script).toContain(`"tool lanes:drain") cmd="tool lanes drain" ;;`);
    expect(script).toMatch(/"tool"\)\n\s+subs="lanes completion out"; opts="--version -V --help"/);
    expect(script).toMatch(/"tool lanes drain"\)\n\s+subs=""; opts="--deadline --force --help"; valued=" --deadline "/);
    expect(script).toMatch(/"tool completion"\)\n.*args="bash zsh"/);
    expect(script).toContain(`"--format") COMPREPLY=( $(compgen -W "table json" -- "$cur") ); return 0 ;;`);
    expect(script).toContain("complete -o default -F _tool tool");
  });

  it("leaves hidden options out", () => {
    expect(script).not.toContain("--secret");
  });

  it("refuses a name that would need quoting in a shell script", () => {
    expect(() => bashCompletion(cmd("tool", "", [], [cmd("x$(reboot)", "")]))).toThrow(/refusing/);
    expect(() => bashCompletion(cmd("tool", "", [{ long: "--a;b", description: "" }]))).toThrow(/refusing/);
  });
});

describe("zshCompletion", () => {
  const script = zshCompletion(program);

  it("is a #compdef function that registers itself when sourced", () => {
    expect(script.startsWith("#compdef tool\n")).toBe(true);
    expect(script).toContain("compdef _tool tool");
  });

  it("describes subcommands and options, quoting descriptions safely", () => {
    expect(script).toContain(`subs=('lanes:lane commands' 'completion:scripts' 'out:output')`);
    // A single quote in a description is closed, escaped and reopened.
    expect(script).toContain(`opts=('--deadline:how long' '--force:force' '--help:display help for command')`);
    expect(zshCompletion(cmd("t", "", [], [cmd("a", "it's")]))).toContain(`'a:it'\\''s'`);
    expect(script).toContain("--format) compadd -- table json; return ;;");
    expect(script).toMatch(/"tool completion"\)[\s\S]*?args=\(bash zsh\)/);
  });
});
