// Runs one LaneManager operation in its own process, for the crash-recovery suite. With
// LANEKEEPER_TEST_CRASH_AT=<op>:<step> the agent code SIGKILLs this process right after that step was journaled.
// Usage: node agent-crash-driver.mjs <params.json> <create|remove|drain|upgrade|recover> <laneId>   (secret token on stdin;
// upgrade goes to params.upgradeTo)
// Uses the built packages (npm run build).
import { readFileSync } from "node:fs";
import { AuditLog, signingKeyFromPem } from "@lanekeeper/shared";
import { ContainerRuntime, LaneDirectories, LaneManager, MarkerSigner, SystemdRuntime } from "../../packages/agent/dist/index.js";

const [paramsPath, op, laneId] = process.argv.slice(2);
const p = JSON.parse(readFileSync(paramsPath, "utf8"));
let token = "";
for await (const chunk of process.stdin) token += chunk;
token = token.trim();

const key = signingKeyFromPem(readFileSync(p.keyFile, "utf8"));
const signer = new MarkerSigner(p.hostId, key);
const dirs = new LaneDirectories(p.laneRoot, signer);
const runtimes = {};
if (p.backend === "systemd") {
  runtimes.systemd = new SystemdRuntime({
    hostId: p.hostId,
    unitDir: p.unitDir,
    signer,
    dirs,
    runnerDistPath: p.distPath,
    user: { name: "root", uid: 0, gid: 0, home: "/root" },
  });
} else {
  runtimes.container = new ContainerRuntime({ hostId: p.hostId, signer, dirs, socketPath: p.socketPath, allowedImages: [p.image], networkMode: "host" });
}
const audit = await AuditLog.open(p.auditPath, { mode: 0o600 });
const lanes = new LaneManager({ hostId: p.hostId, stateDir: p.stateDir, dirs, runtimes, audit, health: p.health, auditSource: `agent:${p.hostId}` });
try {
  if (op === "create") await lanes.create({ spec: p.specs[laneId], [p.specs[laneId].mode === 2 ? "jitConfig" : "registrationToken"]: Buffer.from(token), operationId: `crash-${laneId}` });
  else if (op === "recover") process.stdout.write(`${JSON.stringify(await lanes.recover())}\n`);
  else if (op === "remove") await lanes.remove({ laneId, removeToken: token === "" ? undefined : Buffer.from(token), operationId: `crash-${laneId}` });
  else if (op === "drain") await lanes.drain({ laneId });
  else if (op === "upgrade") await lanes.upgrade({ laneId, runnerVersion: p.upgradeTo, operationId: `crash-${laneId}` });
  else throw new Error(`unknown op ${op}`);
  if (op !== "recover") process.stdout.write("completed\n");
} catch (err) {
  process.stdout.write(`failed: ${err.code ?? ""} ${err.message}\n`);
  process.exitCode = 3;
} finally {
  await audit.close();
}
