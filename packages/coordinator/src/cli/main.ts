import { processIo } from "./cli-io.js";
import { runCli } from "./program.js";

/** Entry point of the `lanekeeper` binary. */
export async function main(): Promise<void> {
  process.exitCode = await runCli(process.argv.slice(2), processIo());
  // A connection abandoned at a --timeout may still hold the event loop: the command is over, so leave anyway.
  setTimeout(() => process.exit(), 1_000).unref();
}
