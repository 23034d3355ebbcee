import { Argument, CommanderError, type Command } from "commander";
import { bashCompletion, formatBuildInfo, zshCompletion } from "@lanekeeper/shared";
import type { CliIo } from "./cli-io.js";
import { coordinatorBuildInfo } from "./coordinator-version.js";
import { ExitCode } from "./exit-codes.js";

/**
 * Register what is about the program itself: `-V, --version` (the version and commit, worked out only when asked:
 * in a checkout it runs `git`), `version [--json]`, and `completion bash|zsh`, generated from `program` as it
 * stands when the command runs, so every command and option registered by then completes.
 */
export function registerMetaCommands(program: Command, io: CliIo, done: (code: ExitCode) => void): void {
  program.option("-V, --version", "print the version and git commit").on("option:version", () => {
    io.out(`${formatBuildInfo(program.name(), coordinatorBuildInfo())}\n`);
    // As commander's own --version: stop parsing here, successfully.
    throw new CommanderError(0, "commander.version", "");
  });

  program
    .command("version")
    .description("print the version and git commit")
    .option("--json", "print {name, version, commit}")
    .action((o: { json?: boolean }) => {
      const info = coordinatorBuildInfo();
      io.out(o.json === true ? `${JSON.stringify({ name: program.name(), ...info })}\n` : `${formatBuildInfo(program.name(), info)}\n`);
      done(ExitCode.OK);
    });

  program
    .command("completion")
    .description("print a shell completion script: source <(lanekeeper completion bash)")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
    .action((shell: "bash" | "zsh") => {
      io.out(shell === "bash" ? bashCompletion(program) : zshCompletion(program));
      done(ExitCode.OK);
    });
}
