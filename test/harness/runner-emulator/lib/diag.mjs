// Trace log in `_diag/<Component>_YYYYMMDD-HHMMSS-utc.log`, the file name pattern of `HostTraceListener`.
// Never pass secrets here: tokens and credentials are not logged, only their presence.

import fs from "node:fs";
import path from "node:path";

function fileStamp(date) {
  const iso = date.toISOString(); // 2026-01-02T03:04:05.678Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

/**
 * Opens `<root>/_diag/<component>_<stamp>-utc.log` for appending; returns a tracer. With
 * `ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT` set (the official container image sets it), trace lines go to stdout
 * instead of a file, as the real `HostContext` does.
 */
export function openDiag(root, component) {
  const dir = path.join(root, "_diag");
  let fd = -1;
  let file = "";
  if ((process.env.ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT ?? "") !== "") {
    fd = 1;
  } else {
    try {
      fs.mkdirSync(dir, { recursive: true });
      file = path.join(dir, `${component}_${fileStamp(new Date())}-utc.log`);
      fd = fs.openSync(file, "a", 0o644);
    } catch {
      fd = -1; // A read-only root still runs; it only loses its trace.
    }
  }
  const write = (level, message) => {
    if (fd < 0) return;
    const stamp = new Date().toISOString().replace("T", " ");
    try {
      fs.writeSync(fd, `[${stamp} ${level} ${component}] ${message}\n`);
    } catch {
      // ignore
    }
  };
  return {
    file,
    info: (m) => write("INFO", m),
    warn: (m) => write("WARN", m),
    error: (m) => write("ERR ", m),
  };
}
