// One coordinator process appending to a shared audit chain, for the multi-process audit suite.
// Usage: node coordinator-audit-driver.mjs <natsUrl> <chainFile> <instance> <records>
// Uses the built packages (npm run build).
import { connect } from "nats";
import { CoordinatorAudit } from "../../packages/coordinator/dist/index.js";

const [url, path, instance, n] = process.argv.slice(2);
const nc = await connect({ servers: url });
const audit = await CoordinatorAudit.open({ path, js: nc.jetstream(), jsm: await nc.jetstreamManager(), instance });
for (let i = 0; i < Number(n); i++) {
  // Interleave with the other process: a few appends at once, then a pause.
  await Promise.all([0, 1].map((j) => audit.append({ action: "apply", phase: "dry-run", message: `${instance} ${i}/${j}` })));
  await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5)));
}
await audit.close();
await nc.drain();
process.stdout.write("done\n");
