import { Command, CommanderError, InvalidArgumentError } from "commander";
import { cliErrorReport, renderCliError, usageError } from "@lanekeeper/shared";
import type { CliIo } from "./cli-io.js";
import { ExitCode, exitCodeFor, exitCodeForArgv, hintFor } from "./exit-codes.js";
import { runHostsAdd, runHostsList, runHostsRemove } from "./hosts-command.js";
import { parseDuration } from "./duration.js";
import { runPlan, type PlanCommandDeps, type PlanCommandOptions } from "./plan-command.js";
import { registerMetaCommands } from "./meta-commands.js";
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
 * an exit code here, by {@link exitCodeFor}, and printed once in the style both CLIs share: `error: … (CODE)`
 * and a `hint:` line on stderr, or `{"error": ...}` on stdout with `--json`.
 */
export async function runCli(argv: readonly string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  let result: number = ExitCode.OK;
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
    .option("--timeout <duration>", "give up (exit 16, TIMEOUT) when NATS or GitHub do not answer within this (default 60s)", parseDuration)
    .option("--detailed-exitcode", "exit 0 when there is nothing to do, 2 when the plan has actions (17 on a degraded view; errors as usual, a bad command line 1)")
    .option("--out <file>", "save the plan for `lanekeeper apply <file>` (not from a degraded view)")
    .option("--expires-in <duration>", "how long the saved plan may be applied (default 1h)", parseDuration)
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
  // Last: `completion` describes the program as registered up to here.
  registerMetaCommands(program, io, (code) => {
    result = code;
  });

  try {
    await program.parseAsync([...argv], { from: "user" });
    return result;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here successfully; a missing subcommand has already printed the help to stderr.
      if (err.exitCode === 0) return ExitCode.OK;
      if (err.code === "commander.help") return exitCodeForArgv(ExitCode.USAGE, argv);
      return exitCodeForArgv(reportError(usageError(err.message, "lanekeeper --help"), json, io), argv);
    }
    return exitCodeForArgv(reportError(err, json, io), argv);
  }
}

/** Print a failure in the style shared by both CLIs (`renderCliError`) and return its exit code. */
function reportError(err: unknown, json: boolean, io: CliIo): ExitCode {
  const report = cliErrorReport(err, { exitCodeFor, hintFor });
  const text = renderCliError(report, json);
  if (text.stdout !== "") io.out(text.stdout);
  if (text.stderr !== "") io.err(text.stderr);
  return exitCodeFor(err);
}
