/** Time as milliseconds since the epoch, injectable so every time check is testable with a fake clock. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The real wall clock. */
export const systemClock: Clock = Object.freeze({ now: (): number => Date.now() });

/** A clock tests move by hand. It may go backwards, to test clock jumps. */
export class FakeClock implements Clock {
  private current: number;

  /** @param startMs - initial time; defaults to a fixed instant so tests are reproducible. */
  constructor(startMs = 1_800_000_000_000) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  /** Set the time to `ms`. */
  set(ms: number): void {
    this.current = ms;
  }

  /** Move time by `deltaMs` (negative moves it back). */
  advance(deltaMs: number): void {
    this.current += deltaMs;
  }
}
