// Gives this node process the name of the real runner binary, so that `pgrep -x Runner.Listener`,
// `ps -C Runner.Worker` and /proc/<pid>/comm see what they see with the real runner.
//
// Writing /proc/self/comm sets the kernel's process name (the main thread's, which is what /proc/<pid>/comm
// and `pgrep` read) and leaves /proc/<pid>/cmdline alone, so argv still shows `…/bin/Runner.Worker
// spawnclient 3 4`. `process.title` would also set comm (libuv calls prctl(PR_SET_NAME)), but it overwrites
// the argv area, leaving cmdline as the bare title; it is only the fallback where /proc is not writable.

import fs from "node:fs";

/** Sets /proc/self/comm to `name` (at most 15 bytes survive, the kernel's TASK_COMM_LEN - 1). */
export function setProcessName(name) {
  try {
    fs.writeFileSync("/proc/self/comm", name);
    return;
  } catch {
    // Not Linux, or /proc mounted read-only: fall back to the title (loses argv in cmdline).
  }
  try {
    process.title = name;
  } catch {
    // ignore
  }
}
