/**
 * `lanekeeper-agent status` output: a readable table for people and stable JSON (the protobuf JSON mapping of
 * `AgentStatusReport`, enums as names) for tools.
 */
import { type AgentStatusReport, AgentStatusReport as ReportCodec, backendToJSON, healthToJSON, laneStateToJSON, resultStatusToJSON } from "@lanekeeper/shared";

/** Render rows as aligned columns. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** A blank line, a title, then the table or "none". */
function section(title: string, header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return ["", title, rows.length === 0 ? "  none" : table(header, rows)];
}

function short(enumText: string, prefix: string): string {
  return enumText.startsWith(prefix) ? enumText.slice(prefix.length).toLowerCase().replace(/_/g, "-") : enumText.toLowerCase();
}

function ago(ms: number, now: number): string {
  if (ms <= 0) return "-";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** `list` joined, or "-" when empty. */
function list(xs: readonly string[] | undefined): string {
  return xs !== undefined && xs.length > 0 ? xs.join(",") : "-";
}

/** Which agent answered, its NATS connection, its trust and its allowlist: the header of the human rendering. */
export function formatHeader(r: AgentStatusReport, now = Date.now()): string[] {
  const out: string[] = [];
  const a = r.allowlist;
  const nats = r.nats;
  const natsState = nats?.state || r.natsState || "-";
  out.push(`host ${r.hostId}  agent ${r.agentVersion}  up ${ago(r.startedAtMs, now)}  nats ${natsState}`);
  if (r.pid !== 0 || r.configPath !== "" || r.statusSocket !== "") {
    out.push(`answered by: pid ${r.pid || "-"}  config ${r.configPath || "-"}  socket ${r.statusSocket || "-"}`);
  }
  if (nats !== undefined && nats.state !== "disabled") {
    const where = nats.state === "connected" ? `connected to ${nats.server}` : `${nats.state} (${nats.server})`;
    const parts = [`nats: ${where} for ${ago(nats.sinceMs, now)}`];
    if (nats.reconnects > 0) parts.push(`reconnects ${nats.reconnects}`);
    out.push(parts.join("  "));
    if (nats.lastError !== "") out.push(`  last error (${ago(nats.lastErrorAtMs, now)} ago): ${nats.lastError}`);
  } else out.push("nats: not started");
  const t = r.trust;
  if (t === undefined) out.push("trust: not loaded yet (the NATS side has not started)");
  else if (t.loaded) out.push(`trust: key set version ${r.keysetVersion} from ${t.trustFile}`);
  else {
    // Said loudly: without a key set every intent is refused, and until now only the log said so.
    out.push(`TRUST: NO TRUSTED KEY SET: EVERY INTENT IS REFUSED (UNKNOWN_KEY). ${t.error || `cannot load ${t.trustFile}`}`);
    out.push(`  install the coordinator's trust file (<keyFile>.keyset.json, written by lanekeeper keys generate) as ${t.trustFile} and restart the agent`);
  }
  out.push(r.controlEnabled ? "control: ENABLED" : "control: disabled (observe and report only; set control.enabled in the config to opt in)");
  out.push(
    `allowlist: scopes ${list(a?.scopes)}  pools ${list(a?.pools)}  backends ${list(a?.backends)}  actions ${list(a?.actions)}  images ${list(a?.images)}  max lanes ${a?.maxLanes ?? 0}`,
  );
  return out;
}

/** The human rendering. */
export function formatStatus(r: AgentStatusReport, now = Date.now()): string {
  const out: string[] = formatHeader(r, now);
  out.push("");
  out.push(`LANES (${r.lanes.length})`);
  if (r.lanes.length === 0) out.push("  none");
  else {
    out.push(
      table(
        ["LANE", "BACKEND", "STATE", "HEALTH", "JOB", "RUNNER", "RESTARTS", "SINCE", "FLAGS"],
        r.lanes.map((l) => [
          l.laneId,
          short(backendToJSON(l.backend), "BACKEND_"),
          short(laneStateToJSON(l.state), "LANE_STATE_"),
          short(healthToJSON(l.health), "HEALTH_"),
          l.jobRunning ? "running" : "-",
          l.runnerId ? `#${l.runnerId} ${l.runnerName}` : l.runnerName || "-",
          String(l.restartsInWindow),
          ago(l.stateSinceMs, now),
          [l.held ? `held${l.holdReason ? `(${l.holdReason})` : ""}` : "", l.draining ? "draining" : ""].filter((s) => s !== "").join(" ") || "-",
        ]),
      ),
    );
    for (const l of r.lanes.filter((x) => x.recoveryNote !== "")) out.push(`  ! ${l.laneId} ${l.attentionReason}: ${l.recoveryNote}`);
  }
  out.push(
    ...section(
      `UNMANAGED RUNNERS (${r.unmanaged.length}, read-only: never touched)`,
      ["KIND", "NAME", "RUNNER", "STATE", "WHY"],
      r.unmanaged.map((u) => [u.kind, u.name, u.runnerName || "-", u.state || "-", u.reason]),
    ),
    ...section(
      "RECENT INTENTS",
      ["SEQ", "TIME", "ACTION", "LANE", "STATUS", "REASON"],
      r.recentIntents.map((i) => [String(i.sequence), new Date(i.atMs).toISOString(), i.action || "-", i.laneId || "-", short(resultStatusToJSON(i.status), "RESULT_STATUS_"), i.reasonCode || "-"]),
    ),
    ...section(
      "RECENT AUDIT",
      ["SEQ", "TIME", "ACTION", "PHASE", "LANE", "REASON"],
      r.recentAudit.map((e) => [String(e.seq), new Date(e.atMs).toISOString(), e.action, e.phase, e.laneId || "-", e.reasonCode || "-"]),
    ),
  );
  return `${out.join("\n")}\n`;
}

/** The JSON rendering (stable: protobuf JSON names, enums as strings). */
export function statusJson(r: AgentStatusReport): string {
  return `${JSON.stringify(ReportCodec.toJSON(r), null, 2)}\n`;
}
