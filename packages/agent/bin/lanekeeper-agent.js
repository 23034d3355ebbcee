#!/usr/bin/env node
// lanekeeper-agent: see docs/agent.md. The code lives in dist/ (npm run build).
import { main } from "../dist/cli.js";

// Exit explicitly: once `run` has stopped everything, a connection still retrying in the background (NATS) must
// not keep the process alive. stdout and stderr are synchronous for files and pipes on Linux, so nothing is lost.
process.exit(await main(process.argv.slice(2)));
