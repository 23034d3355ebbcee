// Console output in the shape of the runner's `Terminal`: ordinary lines on stdout, errors on stderr, and
// "√ " before success messages. The real runner colours lines only on a terminal; the emulator never does.

import fs from "node:fs";

/** `DateTime.UtcNow:u`, e.g. `2026-01-02 03:04:05Z`. */
export function utcStamp(date = new Date()) {
  return `${date.toISOString().slice(0, 19).replace("T", " ")}Z`;
}

// Synchronous writes: the process may exit right after a line, and a line must never be lost or reordered
// between stdout and stderr.
function writeFd(fd, text) {
  try {
    fs.writeSync(fd, text);
  } catch {
    // A closed stdout (EPIPE) must not crash the runner; the real one ignores console failures too.
  }
}

export const term = {
  line(text = "") {
    writeFd(1, `${text}\n`);
  },
  write(text) {
    writeFd(1, text);
  },
  error(text) {
    writeFd(2, `${text}\n`);
  },
  success(text) {
    writeFd(1, `√ ${text}\n`);
  },
  section(title) {
    writeFd(1, `\n# ${title}\n\n`);
  },
};
