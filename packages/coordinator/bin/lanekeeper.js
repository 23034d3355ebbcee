#!/usr/bin/env node
// lanekeeper: the coordinator CLI. The code is in dist/ (npm run build).
import { main } from "../dist/cli/main.js";

await main();
