/**
 * `--state-file`: the state as JSON, loaded at start and rewritten atomically (temp file + rename) shortly
 * after each change, so a killed emulator leaves either the old or the new file, never half of one.
 */
import { readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { GitHubEmulatorError } from "./errors.js";
import { STATE_SAVE_DELAY_MS } from "./limits.js";
import type { StateSnapshot } from "./state.js";

/** A state file. */
export class StateFile {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => StateSnapshot,
  ) {}

  /** The saved snapshot, or undefined when the file does not exist yet. */
  load(): StateSnapshot | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new GitHubEmulatorError("STATE_FILE_INVALID", `cannot read state file ${this.path}`, { cause: err });
    }
    try {
      return JSON.parse(text) as StateSnapshot;
    } catch (err) {
      throw new GitHubEmulatorError("STATE_FILE_INVALID", `state file ${this.path} is not JSON`, { cause: err });
    }
  }

  /** Schedules a save; changes within a few milliseconds share one write. */
  changed(): void {
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, STATE_SAVE_DELAY_MS);
  }

  /** Writes now if anything changed; resolves when the file is on disk. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.dirty) return this.writing;
    this.dirty = false;
    const text = JSON.stringify(this.snapshot());
    const tmp = `${this.path}.${process.pid}.tmp`;
    // Writes are chained so an older snapshot never lands after a newer one.
    this.writing = this.writing
      .then(() => writeFile(tmp, text, { mode: 0o600 }))
      .then(() => rename(tmp, this.path))
      .catch((err: unknown) => {
        process.emitWarning(`lk-github-emulator: cannot write state file: ${String(err)}`);
      });
    return this.writing;
  }
}
