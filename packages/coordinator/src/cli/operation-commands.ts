import { InvalidArgumentError, type Command } from "commander";
import type { CliIo } from "./cli-io.js";
import { runApply } from "./apply-command.js";
import { runClusterReplicas } from "./cluster-command.js";
import { parseAuditTailCount, runAuditTail, runAuditVerify } from "./audit-command.js";
import type { CoordinatorCliDeps } from "./coordinator-session.js";
import { parseDuration } from "./duration.js";
import type { ExitCode } from "./exit-codes.js";
import { runKeysGenerate, runKeysPush, runKeysRootInit, runKeysRootRotate, runKeysRotate } from "./keys-command.js";
import { runLanes } from "./lanes-command.js";
import { LANE_SHOW_AUDIT_DEFAULT, LANE_STATE_FILTERS, parseLaneStateFilter, runLanesList, runLanesShow } from "./lanes-view-command.js";
import { runServe } from "./serve-command.js";
import { registerSmokeCommand } from "./smoke-command.js";
import { runStatus } from "./status-command.js";
import { parseWatchInterval } from "./status-watch.js";

function count(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError("must be a non-negative integer");
  return Number(v);
}

function concurrency(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 64) throw new InvalidArgumentError("must be an integer from 1 to 64");
  return Number(v);
}

/**
 * Register the commands that act on the fleet: `apply`, `status`, `lanes list|show|<op>`, `audit verify|tail`,
 * `keys root-init|generate|rotate|root-rotate|push`. `done`
 * receives each command's exit code (the program maps thrown errors itself).
 */
export function registerOperationCommands(program: Command, io: CliIo, deps: CoordinatorCliDeps, done: (code: ExitCode) => void): void {
  program
    .command("apply")
    .description("observe, plan and carry the plan out: create, drain, restart, remove lanes (asks first on a terminal)")
    .argument("[plan-file]", "apply exactly this saved plan (lanekeeper plan --out), after re-checking it; no re-planning")
    .option("--policy <file>", "policy file (default: $LANEKEEPER_POLICY or ./lanekeeper.yaml)")
    .option("--dry-run", "change nothing; print the plan and record it in the audit log as dry-run records")
    .option("--yes", "do not ask for confirmation (needed when stdin is not a terminal)")
    .option("--json", "print the report (and the plan) as JSON on stdout; progress events as JSON lines on stderr")
    .option("--quiet", "no progress lines on stderr")
    .option("--max-removals <n>", "lane removals and scale-down drains per plan (default 2)", count)
    .option("--max-creates <n>", "lane creations per plan (default 50)", count)
    .option("--rate-limit-reserve <n>", "GitHub requests kept for removals (default 200)", count)
    .option("--concurrency <n>", "actions carried out at the same time, 1 to 64 (default: the policy's coordinator.applyConcurrency)", concurrency)
    .option("--inventory-wait <duration>", "how long to wait for fresh agent inventories (default 15s)", parseDuration)
    .option("--timeout <duration>", "give up (exit 16, TIMEOUT) when the whole command takes longer (default 1h)", parseDuration)
    .action(async (planFile: string | undefined, o: Parameters<typeof runApply>[0]) => {
      done(await runApply(o, io, deps, planFile));
    });

  program
    .command("status")
    .description("every lane by state from the coordinator records, GitHub and the agents' inventories; reads only")
    .option("--policy <file>", "policy file")
    .option("--json", "print JSON")
    .option("--inventory-wait <duration>", "how long to wait for fresh agent inventories (default 6s)", parseDuration)
    .option("--timeout <duration>", "give up (exit 16, TIMEOUT) when NATS or GitHub do not answer within this (default 60s); with --watch, per round", parseDuration)
    .option("--watch", "re-render every --interval until Ctrl-C; a failed round is shown and the watch goes on")
    .option("--interval <duration>", "with --watch: time between rounds (default 5s, at least 1s)", parseWatchInterval)
    .action(async (o: Parameters<typeof runStatus>[0]) => {
      done(await runStatus(o, io, deps));
    });

  program
    .command("cluster")
    .description("the NATS JetStream cluster under the coordinator")
    .command("replicas")
    .description("replicas, leader and caught-up peers of the coordinator's KV buckets and audit stream, against coordinator.jetstreamReplicas")
    .option("--policy <file>", "policy file")
    .option("--apply", "change every existing stream to coordinator.jetstreamReplicas (the servers copy the data in the background)")
    .option("--json", "print JSON")
    .action(async (o: Parameters<typeof runClusterReplicas>[0]) => {
      done(await runClusterReplicas(o, io));
    });

  const lanes = program.command("lanes").description("list and show lanes; operator commands on one lane: drain, restart, remove, hold, release");
  lanes
    .command("list")
    .description("the lanes status shows, filtered; reads only")
    .option("--policy <file>", "policy file")
    .option("--scope <scope>", "only lanes of this scope (owner/repo or org:<org>)")
    .option("--pool <pool>", "only lanes of this pool")
    .option("--host <hostId>", "only lanes on this host")
    .option("--state <state>", `only lanes with this record state or class: ${LANE_STATE_FILTERS.join(", ")}`, parseLaneStateFilter)
    .option("--json", "print JSON")
    .option("--inventory-wait <duration>", "how long to wait for fresh agent inventories (default 6s)", parseDuration)
    .option("--timeout <duration>", "give up (exit 16, TIMEOUT) when NATS or GitHub do not answer within this (default 60s)", parseDuration)
    .action(async (o: Parameters<typeof runLanesList>[0]) => {
      done(await runLanesList(o, io, deps));
    });
  lanes
    .command("show")
    .description("one lane from every side: coordinator record, GitHub, host, recovery note, recent audit; reads only")
    .argument("<lane>", "the lane id (see `lanekeeper lanes list`)")
    .option("--policy <file>", "policy file")
    .option("--audit <n>", `how many of the lane's newest audit records (default ${LANE_SHOW_AUDIT_DEFAULT})`, count)
    .option("--json", "print JSON")
    .option("--inventory-wait <duration>", "how long to wait for a fresh inventory from the lane's host (default 6s)", parseDuration)
    .option("--timeout <duration>", "give up (exit 16, TIMEOUT) when NATS or GitHub do not answer within this (default 60s)", parseDuration)
    .action(async (laneId: string, o: Parameters<typeof runLanesShow>[1]) => {
      done(await runLanesShow(laneId, o, io, deps));
    });
  const laneOp = (op: "drain" | "restart" | "remove" | "hold" | "release", description: string, stops: boolean): void => {
    const c = lanes
      .command(op)
      .description(description)
      .argument("<lane>", "the lane id (see `lanekeeper status`)")
      .option("--policy <file>", "policy file")
      .option("--json", "print the report as JSON on stdout; progress events as JSON lines on stderr")
      .option("--quiet", "no progress lines on stderr")
      .option("--operator <name>", "who runs this, for the audit log (default: $LANEKEEPER_OPERATOR or the login name)")
      .option("--inventory-wait <duration>", "how long to wait for fresh agent inventories (default 15s)", parseDuration)
      .option("--timeout <duration>", "give up (exit 16, TIMEOUT) when the whole command takes longer (default 1h)", parseDuration);
    if (stops) {
      c.option("--deadline <duration>", "how long to wait for the lane to be idle (default: policy coordinator.drain.deadlineMs)", parseDuration);
      c.option("--force", "once --deadline has passed, stop the lane even though a job runs (kills the job; needs --deadline and a confirmation: a prompt, or --yes); audited");
      c.option("--yes", "confirm --force without a prompt (needed when stdin is not a terminal)");
    }
    if (op === "hold") c.option("--reason <text>", "why the lane is held (shown by the agent and in the audit)");
    c.action(async (laneId: string, o: Parameters<typeof runLanes>[2]) => {
      done(await runLanes(op, laneId, o, io, deps));
    });
  };
  laneOp("drain", "take the lane out of service: lk-draining labels, agent drained, wait until no job runs", true);
  laneOp("restart", "drain, restart the runner, verify it online, restore its labels", true);
  laneOp("remove", "drain, stop, deregister, delete the unit or container and its directory, verify gone", true);
  laneOp("hold", "the agent refuses every change to the lane until it is released", false);
  laneOp("release", "lift a hold, and put a drained or needs-attention lane back in service", false);

  const audit = program.command("audit").description("the coordinator's tamper-evident audit log");
  audit
    .command("verify")
    .description("verify the hash chain; the first broken line is named")
    .option("--policy <file>", "policy file (for coordinator.auditFile)")
    .option("--file <path>", "verify this chain file instead")
    .option("--stream", "also verify the copy in the LK_AUDIT JetStream stream, and the local chain against it (deleted, cut short, restarted)")
    .option("--host <id>", "check an agent's audit chain against the anchor kept for it (with --file: a copy of that agent's audit.log)")
    .option("--json", "print JSON")
    .action(async (o: Parameters<typeof runAuditVerify>[0]) => {
      done(await runAuditVerify(o, io, deps));
    });
  audit
    .command("tail")
    .description("the last records")
    .option("--policy <file>", "policy file (for coordinator.auditFile)")
    .option("--file <path>", "read this chain file instead")
    .option("--stream", "read the LK_AUDIT stream (every coordinator and agent) instead of the local file")
    .option("-n, --lines <n>", "how many records, 0 to 100000 (default 20)", parseAuditTailCount)
    .option("--json", "print JSON")
    .action(async (o: Parameters<typeof runAuditTail>[0]) => {
      done(await runAuditTail(o, io, deps));
    });

  const keys = program.command("keys").description("the coordinator's intent-signing key and the key set agents trust");
  keys
    .command("root-init")
    .description("create the offline root key (0600, never printed; move it offline) and its public key <file>.pub")
    .requiredOption("--out <file>", "where to write the root private key; the public key goes to <file>.pub")
    .option("--json", "print JSON")
    .action(async (o: Parameters<typeof runKeysRootInit>[0]) => {
      done(await runKeysRootInit(o, io));
    });
  keys
    .command("generate")
    .description("create the signing key (coordinator.keyFile, 0600) and the version-1 trust file for the agents, pinning the root key")
    .option("--policy <file>", "policy file")
    .requiredOption("--root-public-key <file>", "the root public key `keys root-init` wrote (<root-key>.pub)")
    .option("--json", "print JSON")
    .action(async (o: Parameters<typeof runKeysGenerate>[0]) => {
      done(await runKeysGenerate(o, io));
    });
  keys
    .command("rotate")
    .description("next phase of a key rotation (announce, then activate; retire drops expired keys): writes the signed update")
    .option("--policy <file>", "policy file")
    .option("--phase <phase>", "announce | activate | retire (default: the next one)", (v: string) => {
      if (v !== "announce" && v !== "activate" && v !== "retire") throw new InvalidArgumentError("must be announce, activate or retire");
      return v;
    })
    .requiredOption("--root-key <file>", "the offline root key (`keys root-init`): it alone signs key-set updates")
    .option("--push", "send the signed update to every enrolled host over NATS")
    .option("--out <file>", "where to write the signed update (default <keyFile>.keyset-v<version>.update)")
    .option("--json", "print JSON")
    .action(async (o: Parameters<typeof runKeysRotate>[0]) => {
      done(await runKeysRotate(o, io));
    });
  keys
    .command("root-rotate")
    .description("replace the root key: a key set naming the new root, signed by the old and the new root")
    .option("--policy <file>", "policy file")
    .requiredOption("--root-key <file>", "the current (old) root key")
    .requiredOption("--new-root-key <file>", "the new root key (another `keys root-init`)")
    .option("--push", "send the signed update to every enrolled host over NATS")
    .option("--out <file>", "where to write the signed update (default <keyFile>.keyset-v<version>.update)")
    .option("--json", "print JSON")
    .action(async (o: Parameters<typeof runKeysRootRotate>[0]) => {
      done(await runKeysRootRotate(o, io));
    });
  keys
    .command("push")
    .description("send a signed key-set update file to every enrolled host")
    .argument("<update-file>", "the file `keys rotate` wrote")
    .option("--policy <file>", "policy file")
    .option("--root-key <file>", "add the root key's signature (needed when the update is not root-signed yet)")
    .option("--json", "print JSON")
    .action(async (file: string, o: Parameters<typeof runKeysPush>[1]) => {
      done(await runKeysPush(file, o, io));
    });

  registerSmokeCommand(program, io, deps, done);

  program
    .command("serve")
    .description("the long-running coordinator: reconcile loop while leader, health-driven restarts, Prometheus metrics")
    .option("--policy <file>", "policy file")
    .option("--interval <duration>", "reconcile interval (default: policy coordinator.reconcileIntervalMs)", parseDuration)
    .option("--metrics-port <port>", "serve Prometheus metrics on this port (GET /metrics)", count)
    .option("--metrics-host <address>", "address of the metrics server (default 0.0.0.0)")
    .option("--lock-ttl <duration>", "leader lock TTL (default 15s)", parseDuration)
    .option("--offline-grace <duration>", "restart a lane offline on GitHub while its host runs it after this (default 2m)", parseDuration)
    .option("--max-restarts <n>", "health restarts per lane per hour before it is left to an operator (default 3)", count)
    .option("--once", "run one reconcile cycle (if leader) and exit")
    .option("--inventory-wait <duration>", "how long to wait for fresh agent inventories at start (default 15s)", parseDuration)
    .option("--json", "progress events as JSON lines on stderr; with --once, the report as JSON on stdout")
    .action(async (o: Parameters<typeof runServe>[0]) => {
      done(await runServe(o, io, deps));
    });
}
