/**
 * Where the harness keeps runtime state (fleet directories, systemd sandboxes, their sockets) by default: one short
 * directory outside the checkout, so the suites and the demo work from any clone location. Not under /tmp or
 * /var/tmp (the systemd sandbox replaces them with private ones), /home or /root (hidden from units by
 * ProtectHome), and short, so socket paths below it stay far under the 108-byte unix socket limit however deep
 * the clone is. Each run makes its own `lk-…-XXXXXX` directory below and removes it when done; directories of dead
 * runs are swept by the next run (fleet manifests, sandbox owner files).
 */
import { join } from "node:path";

/** The default state root. */
export const DEFAULT_STATE_ROOT = "/var/lib/lanekeeper-test";

/** The state root: `$LK_STATE_ROOT`, else {@link DEFAULT_STATE_ROOT}. */
export function harnessStateRoot(): string {
  return process.env.LK_STATE_ROOT ?? DEFAULT_STATE_ROOT;
}

/** A directory under the state root (`fleet`, `sd`). */
export function stateDirFor(kind: string): string {
  return join(harnessStateRoot(), kind);
}
