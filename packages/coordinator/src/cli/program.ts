import { Command, CommanderError, InvalidArgumentError } from "commander";
import { LanekeeperError } from "@lanekeeper/shared";
import type { CliIo } from "./cli-io.js";
import { ExitCode, exitCodeFor } from "./exit-codes.js";
import { runHostsAdd, runHostsList, runHostsRemove } from "./hosts-command.js";
import { parseDuration } from "./duration.js";
import { runPlan, type PlanCommandDeps, type PlanCommandOptions } from "./plan-command.js";
import { registerOperationCommands } from "./operation-commands.js";
import type { CoordinatorCliDeps } from "./coordinator-session.js";

function nonNegativeInt(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError("must be a non-negative integer");
  return Number(v);
}

/** Dependencies a test may inject into the commands. */
export type CliDeps = PlanCommandDeps & CoordinatorCliDeps;

/**
 * Run `lanekeeper` with `argv` (without node and script) and return the exit code. Every error is turned into
 * an exit code here, by {@link exitCodeFor}, and printed once: as a line on stderr, or as `{"error": ...}` on
 * stdout with `--json`.
 */
export async function runCli(argv: readonly string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  let result: ExitCode = ExitCode.OK;
  const json = argv.includes("--json");
  const program = new Command("lanekeeper")
    .description("Manage self-hosted GitHub Actions runner lanes on hosts you already own.")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => undefined })
    .showSuggestionAfterError(true);

  program
    .command("plan")
    .description("observe GitHub, classify every runner and lane, and print the plan; changes nothing")
    .option("--policy <file>", "policy file (default: $LANEKEEPER_POLICY or ./lanekeeper.yaml)")
    .option("--json", "print the plan as JSON")
    .option("--records <file>", "plan against this JSON copy of the lane records")
    .option("--max-removals <n>", "lane removals and scale-down drains per plan (default 2)", nonNegativeInt)
    .option("--max-creates <n>", "lane creations per plan (default 50)", nonNegativeInt)
    .option("--rate-limit-reserve <n>", "GitHub requests kept for removals (default 200)", nonNegativeInt)
    .option("--inventory-wait <duration>", "how long to wait for fresh agent inventories (default 15s)", parseDuration)
    .action(async (o: PlanCommandOptions) => {
      result = await runPlan(o, io, deps);
    });

  const hosts = program.command("hosts").description("list, enroll and remove hosts in the policy");
  hosts
    .command("list")
    .description("list enrolled hosts")
    .option("--policy <file>", "policy file")
    .option("--json", "print JSON")
    .action(async (o: { policy?: string; json?: boolean }) => {
      result = await runHostsList(o, io);
    });
  hosts
    .command("add")
    .description("enroll a host from the bundle `lanekeeper-agent init` printed (opted out unless --opt-in)")
    .argument("<bundle-file>", "the enrollment bundle (YAML or JSON)")
    .option("--policy <file>", "policy file")
    .option("--opt-in", "let lanes be placed on this host right away")
    .option("--capacity <n>", "most lanes on this host (default: the bundle's, else 0)", nonNegativeInt)
    .option("--json", "print JSON")
    .action(async (bundleFile: string, o: { policy?: string; json?: boolean; optIn?: boolean; capacity?: number }) => {
      result = await runHostsAdd(bundleFile, o, io);
    });
  hosts
    .command("remove")
    .description("remove an enrolled host that no lanes entry lists")
    .argument("<hostId>", "the host id")
    .option("--policy <file>", "policy file")
    .option("--json", "print JSON")
    .action(async (hostId: string, o: { policy?: string; json?: boolean }) => {
      result = await runHostsRemove(hostId, o, io);
    });

  registerOperationCommands(program, io, deps, (code) => {
    result = code;
  });

  try {
    await program.parseAsync([...argv], { from: "user" });
    return result;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help ends here successfully; a missing subcommand has already printed the help to stderr.
      if (err.exitCode === 0) return ExitCode.OK;
      if (err.code === "commander.help") return ExitCode.USAGE;
      const message = err.message.replace(/^error: /, "");
      if (json) io.out(`${JSON.stringify({ error: { code: "USAGE", message, exitCode: ExitCode.USAGE } })}\n`);
      else io.err(`lanekeeper: ${message}\n(see lanekeeper --help)\n`);
      return ExitCode.USAGE;
    }
    const code = exitCodeFor(err);
    const message = err instanceof Error ? err.message : String(err);
    const errCode = err instanceof LanekeeperError ? err.code : "INTERNAL";
    if (json) io.out(`${JSON.stringify({ error: { code: errCode, message, exitCode: code } }, null, 2)}\n`);
    else io.err(`lanekeeper: ${message}\n`);
    return code;
  }
}
