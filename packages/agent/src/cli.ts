/**
 * The `lanekeeper-agent` command line: `init`, `run`, `status`, `hold`, `release`, `audit verify`, `version`,
 * `completion`. Human output by default, `--json` for tools; every failure prints what to do next and exits with
 * the code from `exit-codes.ts`.
 */
import { userInfo } from "node:os";
import { resolve } from "node:path";
import { Argument, Command, CommanderError } from "commander";
import {
  type AgentConfig,
  ConfigError,
  cliErrorReport,
  createLogger,
  enrollmentBundleJson,
  enrollmentBundleYaml,
  renderCliError,
  usageError,
  MAX_CONFIG_BYTES,
  parseAgentConfig,
  parseAuditAnchor,
  validateLaneId,
  type AuditAnchor,
  bashCompletion,
  formatBuildInfo,
  zshCompletion,
} from "@lanekeeper/shared";
import { AgentDaemon } from "./agent-daemon.js";
import { readSmallFile } from "./atomic-file.js";
import { startAgentIntake, type AgentIntakeHandle } from "./intake/agent-intake.js";
import { initAgent, loadAgentKeys } from "./agent-identity.js";
import { agentBuildInfo } from "./agent-version.js";
import { gatherCapabilities } from "./status/capabilities.js";
import { auditAnchorPath, auditLogPath, verifyAgentAudit } from "./audit-evidence.js";
import { AuditChainBrokenError } from "./errors.js";
import { EXIT, exitCodeFor, hintFor } from "./exit-codes.js";
import { InstanceLock } from "./instance-lock.js";
import { LaneDirectories } from "./lanes/lane-directory.js";
import { cleanHoldReason, readHold, removeHold, writeHold } from "./lanes/lane-holds.js";
import { MarkerSigner } from "./lanes/lane-marker.js";
import { STATUS_DEFAULT_AUDIT_TAIL } from "./limits.js";
import { fetchStatus } from "./status/status-client.js";
import { resolveStatusSocket } from "./status/status-socket.js";
import { formatStatus, statusJson } from "./status/status-format.js";

/** Default config location. */
export const DEFAULT_CONFIG_PATH = "/etc/lanekeeper/agent.yaml";

/** Where output goes (tests capture it). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** Read and parse the config, failing closed with `path: message` lines. */
export async function loadConfig(path: string): Promise<AgentConfig> {
  let buf: Buffer | undefined;
  try {
    buf = await readSmallFile(path, MAX_CONFIG_BYTES);
  } catch (err) {
    throw new ConfigError(`agent config ${path}`, [{ path: "", message: err instanceof Error ? err.message : String(err) }]);
  }
  if (!buf) throw new ConfigError(`agent config ${path}`, [{ path: "", message: "file not found; run `lanekeeper-agent init` or pass --config" }]);
  return parseAgentConfig(buf.toString("utf8"), path);
}

function operator(): string {
  const sudo = process.env.SUDO_USER;
  let me = "unknown";
  try {
    me = userInfo().username;
  } catch {
    // No passwd entry: keep "unknown".
  }
  return sudo && sudo !== me ? `${sudo} (via ${me})` : me;
}

async function verifiedLane(config: AgentConfig, laneId: string): Promise<void> {
  const keys = await loadAgentKeys(config);
  await new LaneDirectories(config.laneRoot, new MarkerSigner(config.hostId, keys.identity)).read(validateLaneId(laneId));
}

/** Build the program; actions resolve to an exit code through `setExit`. */
function program(io: CliIo, setExit: (code: number) => void): Command {
  const cmd = new Command("lanekeeper-agent")
    .description("Owns the GitHub Actions runner lanes on this host. See docs/agent.md.")
    .exitOverride()
    // Commander's own error line is replaced by the shared `error: … (USAGE)` style in main().
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => undefined })
    .showSuggestionAfterError(true);
  // Worked out only when asked: in a checkout it runs `git`.
  cmd.option("-V, --version", "print the version and git commit").on("option:version", () => {
    io.out(`${formatBuildInfo(cmd.name(), agentBuildInfo())}\n`);
    throw new CommanderError(0, "commander.version", "");
  });

  cmd
    .command("init")
    .description("create this host's identity and sealing keys and an observe-only config; print the enrollment bundle")
    .requiredOption("--host-id <id>", "this host's id ([a-z0-9][a-z0-9-]{0,62})")
    .option("--config <path>", "config file to write", DEFAULT_CONFIG_PATH)
    .option("--state-dir <dir>", "private state directory (mode 0700)", "/var/lib/lanekeeper")
    .option("--json", "print the bundle as JSON")
    .action(async (o: { hostId: string; config: string; stateDir: string; json?: boolean }) => {
      const capabilities = await gatherCapabilities().catch(() => undefined);
      const bundle = await initAgent({ hostId: o.hostId, configPath: o.config, stateDir: o.stateDir, ...(capabilities ? { capabilities } : {}) });
      io.out(o.json ? enrollmentBundleJson(bundle) : enrollmentBundleYaml(bundle));
      if (!o.json) io.err(`wrote ${o.config} (control.enabled: false) and keys in ${o.stateDir}\n`);
      setExit(EXIT.OK);
    });

  cmd
    .command("run")
    .description("run the agent: lock, recover interrupted operations, health and inventory loops, status socket, NATS intake")
    .option("--config <path>", "config file", DEFAULT_CONFIG_PATH)
    .action(async (o: { config: string }) => {
      // Signals are handled from the first instant: a SIGTERM while the agent is still starting (recovery, a NATS
      // connection that takes its time) must still stop it cleanly, never kill it half-way.
      let requestStop: () => void = () => undefined;
      const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
      const onSignal = (): void => requestStop();
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
      let lock: InstanceLock | undefined;
      try {
        const config = await loadConfig(o.config);
        // The one single-instance lock (AGENT_LOCKED, exit 4), taken before anything reads or writes the state
        // directory and held by both the daemon and the intake's replay state until both have stopped.
        lock = await InstanceLock.acquire(config.stateDir);
        const log = createLogger({ component: "lanekeeper-agent", level: config.logLevel });
        // The NATS side (intake, signed inventory) starts once the daemon runs; the status report reads it through these hooks.
        let nats: AgentIntakeHandle | undefined;
        const daemon = await AgentDaemon.start({
          config,
          configPath: resolve(o.config),
          log,
          lock,
          // Until the NATS side has started (trust loaded, replay state open) say so: "disabled" would be untrue.
          natsState: () => nats?.natsState() ?? "starting",
          natsStatus: () => nats?.natsStatus(),
          trustStatus: () => nats?.trustStatus(),
          intentHwm: () => nats?.replay.hwm ?? 0,
          keysetVersion: () => nats?.trust?.version ?? 0,
          recentIntents: () => nats?.recentOutcomes() ?? [],
        });
        let stopIntake: Promise<unknown> = Promise.resolve();
        try {
          const started = startAgentIntake({ daemon, log });
          const first = await Promise.race([started.then((h) => ({ h })), stopRequested.then(() => undefined)]);
          if (first) nats = first.h;
          // Stopped while the intake was still starting: let it finish and stop it before the lock goes.
          else stopIntake = started.then((h) => h.stop()).catch(() => undefined);
        } catch (err) {
          await daemon.stop();
          throw err;
        }
        await stopRequested;
        await (nats?.stop() ?? Promise.resolve()).catch(() => undefined);
        await stopIntake;
        await daemon.stop();
        setExit(EXIT.OK);
      } finally {
        await lock?.release();
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
    });

  cmd
    .command("status")
    .description("show lanes, unmanaged runners and recent audit records (read-only, through the status socket)")
    .option("--config <path>", "config file (for the socket path)", DEFAULT_CONFIG_PATH)
    .option("--socket <path>", "status socket (overrides the config)")
    .option("--audit <n>", "recent audit records to show", String(STATUS_DEFAULT_AUDIT_TAIL))
    .option("--json", "stable JSON output")
    .action(async (o: { config: string; socket?: string; audit: string; json?: boolean }) => {
      const socket = await resolveStatusSocket({ socket: o.socket, configPath: o.config, loadConfig, defaultConfig: o.config === DEFAULT_CONFIG_PATH });
      const tail = Number.parseInt(o.audit, 10);
      const report = await fetchStatus(socket, { auditTail: Number.isSafeInteger(tail) && tail >= 0 ? tail : STATUS_DEFAULT_AUDIT_TAIL });
      io.out(o.json ? statusJson(report) : formatStatus(report));
      setExit(EXIT.OK);
    });

  cmd
    .command("hold")
    .description("put a local hold on a lane: the agent refuses every mutation of it and does not restart it")
    .argument("<laneId>")
    .option("--reason <text>", "why (shown in status and the audit log)", "")
    .option("--config <path>", "config file", DEFAULT_CONFIG_PATH)
    .action(async (laneId: string, o: { reason: string; config: string }) => {
      const config = await loadConfig(o.config);
      await verifiedLane(config, laneId);
      await writeHold(config.stateDir, { laneId, reason: cleanHoldReason(o.reason), atMs: Date.now(), by: operator() });
      io.out(`lane ${laneId} is held; the running agent applies it before its next action\n`);
      setExit(EXIT.OK);
    });

  cmd
    .command("release")
    .description("release a local hold")
    .argument("<laneId>")
    .option("--config <path>", "config file", DEFAULT_CONFIG_PATH)
    .action(async (laneId: string, o: { config: string }) => {
      const config = await loadConfig(o.config);
      validateLaneId(laneId);
      const had = (await readHold(config.stateDir, laneId)) !== undefined;
      await removeHold(config.stateDir, laneId);
      io.out(had ? `lane ${laneId} released\n` : `lane ${laneId} had no hold\n`);
      setExit(EXIT.OK);
    });

  const audit = cmd.command("audit").description("the agent's tamper-evident audit log");
  audit
    .command("verify")
    .description(
      "verify the hash chain of the audit log against its anchor: the local <stateDir>/audit.anchor.json, or the coordinator's (--anchor, from `lanekeeper audit verify --host <id>`)",
    )
    .option("--config <path>", "config file", DEFAULT_CONFIG_PATH)
    .option("--file <path>", "audit log to verify (default: <stateDir>/audit.log)")
    .option("--anchor <seq:hash[:firstHash]>", "compare with this anchor (the coordinator's) instead of the local anchor file")
    .option("--json", "JSON output")
    .action(async (o: { config: string; file?: string; anchor?: string; json?: boolean }) => {
      let anchor: AuditAnchor | undefined;
      if (o.anchor !== undefined) {
        anchor = parseAuditAnchor(o.anchor);
        if (anchor === undefined) throw new ConfigError("--anchor", [{ path: "--anchor", message: "must be <seq>:<hash>[:<firstHash>] (hex SHA-256 hashes)" }]);
      }
      // A --file (a copy, elsewhere) has no local anchor beside it; the host's own log is checked against its own.
      const stateDir = o.file === undefined ? (await loadConfig(o.config)).stateDir : undefined;
      const file = o.file ?? auditLogPath(stateDir ?? "");
      const anchorFile = anchor === undefined && stateDir !== undefined ? auditAnchorPath(stateDir) : undefined;
      const res = await verifyAgentAudit(file, { ...(anchor === undefined ? {} : { anchor }), ...(anchorFile === undefined ? {} : { anchorFile }) });
      // count, lastHash / firstBroken at the top as before; ok, status, missing and message from the anchor check.
      if (o.json) io.out(`${JSON.stringify({ ...res.chain, ...res })}\n`);
      if (!res.ok) {
        throw new AuditChainBrokenError(`${res.message}. Keep the file${res.anchorSource === "local" ? " and the anchor" : ""} as evidence.`);
      }
      if (!o.json) {
        const against = res.anchorSource === "coordinator" ? " (against the coordinator's anchor)" : res.anchorSource === "local" ? " (against the local anchor)" : "";
        io.out(`${res.message}${against}\n`);
      }
      setExit(EXIT.OK);
    });
  cmd
    .command("version")
    .description("print the version and git commit")
    .option("--json", "print {name, version, commit}")
    .action((o: { json?: boolean }) => {
      const info = agentBuildInfo();
      io.out(o.json === true ? `${JSON.stringify({ name: cmd.name(), ...info })}\n` : `${formatBuildInfo(cmd.name(), info)}\n`);
      setExit(EXIT.OK);
    });

  // Last: the script describes the program as registered up to here.
  cmd
    .command("completion")
    .description("print a shell completion script: source <(lanekeeper-agent completion bash)")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
    .action((shell: "bash" | "zsh") => {
      io.out(shell === "bash" ? bashCompletion(cmd) : zshCompletion(cmd));
      setExit(EXIT.OK);
    });
  return cmd;
}

/**
 * Run the CLI with `argv` (without node and script); resolves to the exit code. A failure is printed once, in the
 * style both CLIs share: `error: … (CODE)` and a `hint:` line on stderr, or `{"error": ...}` on stdout with
 * `--json`.
 */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let code: number = EXIT.OK;
  const cmd = program(io, (c) => (code = c));
  try {
    await cmd.parseAsync([...argv], { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here successfully; a missing subcommand has already printed the help.
      if (err.exitCode === 0) return EXIT.OK;
      if (err.code === "commander.help") return EXIT.USAGE;
      return reportError(usageError(err.message, "lanekeeper-agent --help"), argv, io);
    }
    return reportError(err, argv, io);
  }
}

function reportError(err: unknown, argv: readonly string[], io: CliIo): number {
  const report = cliErrorReport(err, { exitCodeFor, hintFor });
  const text = renderCliError(report, argv.includes("--json"));
  if (text.stdout !== "") io.out(text.stdout);
  if (text.stderr !== "") io.err(text.stderr);
  return report.exitCode;
}
