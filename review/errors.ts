/**
 * Errors of the review domain, as values with a class: each says whether another attempt may
 * succeed (`retryable`) and which terminal reason it leads to when it does not.
 *
 * @module
 */
import type { TerminalReason } from "../kv/records.ts";

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

  constructor(
    message: string,
    options: { retryable: boolean; reason: TerminalReason; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.name = "ReviewError";
    this.retryable = options.retryable;
    this.reason = options.reason;
  }
}

/** Why an attempt's abort signal fired. */
export type AbortKind = "shutdown" | "lease_lost" | "cancelled";

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
