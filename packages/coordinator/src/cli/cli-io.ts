/** What a CLI run may touch besides files it is told about: output streams, environment, working directory. */
export interface CliIo {
  /** Write to standard output. */
  out(text: string): void;
  /** Write to standard error. */
  err(text: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Current time; injectable so output is reproducible in tests. */
  now(): number;
  /** Standard output is a terminal (`status --watch` then redraws the screen instead of appending). */
  readonly stdoutIsTTY?: boolean;
}

/** The real process's I/O. */
export function processIo(): CliIo {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
    now: () => Date.now(),
    stdoutIsTTY: process.stdout.isTTY === true,
  };
}
