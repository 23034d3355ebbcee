/** Counters of one GitHub client, read by status output and, later, the Prometheus exporter. */
export interface GitHubClientMetrics {
  /** HTTP requests sent, retries and App token requests included. */
  readonly requests: number;
  /** Responses that were 304 Not Modified (free: they spend no rate limit). */
  readonly notModified: number;
  /**
   * Rate-limit points spent, counted as every response other than 304 (GitHub charges one point per REST
   * request; conditional requests answered 304 are free).
   */
  readonly pointsSpent: number;
  /** Requests that the throttling or retry plugins repeated. */
  readonly retries: number;
  /** Calls not sent because the rate-limit reserve was active. */
  readonly deferred: number;
  /** Logical client calls by operation (`listRunners`, `deleteRunner`, ...). */
  readonly calls: Readonly<Record<string, number>>;
  /** Responses by HTTP status (as a string key). */
  readonly responses: Readonly<Record<string, number>>;
}

/** Mutable counters behind {@link GitHubClientMetrics}. */
export class GitHubMetricsRecorder {
  private requests = 0;
  private notModified = 0;
  private pointsSpent = 0;
  private retries = 0;
  private deferred = 0;
  private readonly calls = new Map<string, number>();
  private readonly responses = new Map<string, number>();

  request(): void {
    this.requests++;
  }

  response(status: number): void {
    if (status === 304) this.notModified++;
    else this.pointsSpent++;
    const k = String(status);
    this.responses.set(k, (this.responses.get(k) ?? 0) + 1);
  }

  retry(): void {
    this.retries++;
  }

  deferral(): void {
    this.deferred++;
  }

  call(operation: string): void {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
  }

  snapshot(): GitHubClientMetrics {
    return {
      requests: this.requests,
      notModified: this.notModified,
      pointsSpent: this.pointsSpent,
      retries: this.retries,
      deferred: this.deferred,
      calls: Object.fromEntries(this.calls),
      responses: Object.fromEntries(this.responses),
    };
  }
}
