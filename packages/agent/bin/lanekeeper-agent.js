#!/usr/bin/env node
// lanekeeper-agent: see docs/agent.md. The code lives in dist/ (npm run build).
import { main } from "../dist/cli.js";

process.exitCode = await main(process.argv.slice(2));
