/**
 * Errors of the review domain, as values with a class: each says whether another attempt may
 * succeed (`retryable`) and which terminal reason it leads to when it does not.
 *
 * @module
 */
import type { TerminalReason } from "../kv/records.ts";

/** Bound of an error message stored on a review, as KV measures it. */
export const MAX_ERROR_BYTES = 2_048;

/**
 * A failure of one review attempt.
 *
 * @example
 * ```ts
 * throw new ReviewError("agent answered 503", { retryable: true, reason: "agent_error" });
 * ```
 */
export class ReviewError extends Error {
  /** Whether another attempt may succeed. */
  readonly retryable: boolean;
  /** The terminal reason recorded when the review fails because of this error. */
  readonly reason: TerminalReason;
  /** The earliest the other side wants to be asked again (`retry-after`, a rate-limit reset). */
  readonly retryAfterMs?: number;
  /** The request may have taken effect although it failed (no answer, or a 5xx). */
  readonly ambiguous: boolean;
  /**
   * The other side refused because of its rate limit (an agent's 429): the attempt is deferred
   * by `retryAfterMs` without being counted.
   */
  readonly rateLimited: boolean;

  constructor(
    message: string,
    options: {
      retryable: boolean;
      reason: TerminalReason;
      cause?: unknown;
      retryAfterMs?: number;
      ambiguous?: boolean;
      rateLimited?: boolean;
    },
  ) {
    super(message, { cause: options.cause });
    this.name = "ReviewError";
    this.retryable = options.retryable;
    this.reason = options.reason;
    this.retryAfterMs = options.retryAfterMs;
    this.ambiguous = options.ambiguous ?? false;
    this.rateLimited = options.rateLimited ?? false;
  }
}

/**
 * Why an attempt's abort signal fired: the instance is stopping; the lease is gone or could not be
 * renewed in time; a cancel or supersede asked the attempt to stop.
 */
export type AbortKind = "shutdown" | "lease_lost" | "stop_requested";

/**
 * Milliseconds to wait from a `retry-after` header (seconds or an HTTP date), if it says any.
 *
 * @example
 * ```ts
 * retryAfterMs("30", Date.now()); // 30000
 * ```
 */
export function retryAfterMs(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The reason an attempt was aborted from outside the agent stream.
 *
 * @example
 * ```ts
 * controller.abort(new AttemptAborted("shutdown"));
 * ```
 */
export class AttemptAborted extends Error {
  readonly kind: AbortKind;
  constructor(kind: AbortKind, message = `attempt aborted: ${kind}`) {
    super(message);
    this.name = "AttemptAborted";
    this.kind = kind;
  }
}
