import { processIo } from "./cli-io.js";
import { runCli } from "./program.js";

/** Entry point of the `lanekeeper` binary. */
export async function main(): Promise<void> {
  process.exitCode = await runCli(process.argv.slice(2), processIo());
}
