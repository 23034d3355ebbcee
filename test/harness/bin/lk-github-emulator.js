#!/usr/bin/env node
// The GitHub emulator command; see test/harness/README.md. Needs `npm run build` first.
import { runCli } from "../dist/github-emulator/cli.js";

process.exitCode = await runCli(process.argv.slice(2));
