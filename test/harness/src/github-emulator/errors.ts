/**
 * Errors of the GitHub emulator. `GitHubEmulatorError` carries a stable `code` for callers (bad options, a
 * state file that cannot be read); `HttpError` is thrown inside request handlers and becomes the HTTP
 * response, so handlers can bail out from any depth with GitHub's exact status and body.
 */

/** Stable codes of {@link GitHubEmulatorError}. */
export type GitHubEmulatorErrorCode = "OPTIONS_INVALID" | "STATE_FILE_INVALID" | "CONTROL_REQUEST_FAILED";

/** A misuse of the emulator itself (not an emulated GitHub error). */
export class GitHubEmulatorError extends Error {
  /** Stable machine-readable code. */
  readonly code: GitHubEmulatorErrorCode;

  constructor(code: GitHubEmulatorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GitHubEmulatorError";
    this.code = code;
  }
}

/** A JSON body as the emulator sends it. */
export type JsonBody = object;

/** An HTTP response raised from inside a handler. */
export class HttpError extends Error {
  /** HTTP status to send. */
  readonly status: number;
  /** JSON body to send. */
  readonly body: JsonBody;
  /** Extra response headers (e.g. `retry-after`). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, body: JsonBody, headers: Record<string, string> = {}) {
    super(typeof (body as { message?: unknown }).message === "string" ? String((body as { message: string }).message) : `HTTP ${status}`);
    this.name = "HttpError";
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/** GitHub's documentation URL placed in error bodies. */
export const DOCS_URL = "https://docs.github.com/rest";

/** GitHub's `basic-error` body, as sent for 401/403/404/409. */
export function basicError(status: number, message: string, documentationUrl = DOCS_URL, headers: Record<string, string> = {}): HttpError {
  return new HttpError(status, { message, documentation_url: documentationUrl, status: String(status) }, headers);
}

/** GitHub's `validation-error-simple` body (422). */
export function validationError(message: string, errors?: string[]): HttpError {
  const body: Record<string, unknown> = { message, documentation_url: DOCS_URL, status: "422" };
  if (errors !== undefined) body.errors = errors;
  return new HttpError(422, body);
}

/** The private protocols' error body: `{message}`. */
export function plainError(status: number, message: string): HttpError {
  return new HttpError(status, { message });
}
