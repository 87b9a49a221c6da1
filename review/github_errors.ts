/**
 * GitHub failures as {@link ReviewError}s: which answers are worth retrying, how long GitHub asks
 * us to wait, and messages that never carry a secret.
 *
 * @module
 */
import { retryAfterMs, ReviewError } from "./errors.ts";

interface ErrorLike {
  status?: unknown;
  message?: unknown;
  response?: { status?: unknown; headers?: Record<string, unknown>; data?: unknown };
}

function statusOf(error: unknown): number | undefined {
  const status = (error as ErrorLike | undefined)?.status;
  return typeof status === "number" ? status : undefined;
}

/**
 * The status of an HTTP answer from GitHub, as opposed to a request that never got one (Octokit
 * calls those 500).
 *
 * @example
 * ```ts
 * answeredStatus(new Error("network")); // undefined
 * ```
 */
export function answeredStatus(error: unknown): number | undefined {
  const response = (error as ErrorLike | undefined)?.response;
  if (!response || typeof response !== "object") return undefined;
  return typeof response.status === "number" ? response.status : statusOf(error);
}

/**
 * `text` with every secret (4 characters or more) replaced by `[REDACTED]`.
 *
 * @example
 * ```ts
 * redact("token abcd1234 refused", ["abcd1234"]); // "token [REDACTED] refused"
 * ```
 */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join("[REDACTED]");
  }
  return out;
}

function oneLine(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * Maps an Octokit failure to a {@link ReviewError} (reason `github_error`): 5xx, 429, a rate-limited
 * 403 (`x-ratelimit-remaining: 0` or `retry-after`) and failures without an answer (network errors,
 * timeouts) are retryable; 401, 404, 422 and every other 4xx are final. `secrets` are cut out of the
 * message. A {@link ReviewError} passes through unchanged.
 *
 * @example
 * ```ts
 * try {
 *   await octokit.pulls.get({ owner: "octo", repo: "app", pull_number: 12 });
 * } catch (error) {
 *   throw githubError(error, "pulls.get octo/app#12", [token]);
 *   // e.g. "GitHub pulls.get octo/app#12 answered 404: Not Found" (final)
 * }
 * ```
 */
export function githubError(
  error: unknown,
  what: string,
  secrets: readonly (string | undefined)[] = [],
  now = Date.now(),
): ReviewError {
  if (error instanceof ReviewError) return error;
  const status = answeredStatus(error);
  if (status === undefined) {
    // No answer: Octokit reports a failed fetch as an HttpError "500" without a response.
    const message = (error as ErrorLike | undefined)?.message;
    const detail = typeof message === "string" && message ? oneLine(message) : String(error);
    return new ReviewError(redact(`GitHub ${what} failed without an answer: ${detail}`, secrets), {
      retryable: true,
      reason: "github_error",
      ambiguous: true,
    });
  }
  const response = (error as ErrorLike).response!;
  const header = (name: string) => {
    const value = response.headers?.[name];
    return value === undefined || value === null ? undefined : String(value);
  };
  const message = typeof response.data === "object" && response.data !== null &&
      typeof (response.data as { message?: unknown }).message === "string"
    ? (response.data as { message: string }).message
    : typeof response.data === "string" && response.data.trim()
    ? response.data
    : "no message";
  // Primary limits say `x-ratelimit-remaining: 0`; secondary ones say so in the message and
  // usually send `retry-after`.
  const rateLimited = (status === 403 || status === 429) &&
    (header("x-ratelimit-remaining") === "0" || header("retry-after") !== undefined ||
      /rate limit/i.test(message));
  const retryable = status >= 500 || status === 429 || rateLimited;
  return new ReviewError(
    redact(`GitHub ${what} answered ${status}: ${oneLine(message)}`, secrets),
    {
      retryable,
      reason: "github_error",
      cause: { status, rateLimited },
      retryAfterMs: rateLimited ? waitFromHeaders(header, now) : undefined,
      ambiguous: status >= 500,
    },
  );
}

/** How long GitHub asks us to wait: `retry-after`, else until `x-ratelimit-reset`. */
function waitFromHeaders(header: (name: string) => string | undefined, now: number) {
  const after = retryAfterMs(header("retry-after"), now);
  if (after !== undefined) return after;
  const reset = Number(header("x-ratelimit-reset"));
  return Number.isFinite(reset) && reset > 0 ? Math.max(0, reset * 1000 - now) : undefined;
}

/**
 * A retryable error for an answer whose body is not what GitHub documents.
 *
 * @example
 * ```ts
 * throw malformed("pulls.get octo/app#1");
 * ```
 */
export function malformed(what: string): ReviewError {
  return new ReviewError(`GitHub ${what} answered with an unexpected body`, {
    retryable: true,
    reason: "github_error",
  });
}
