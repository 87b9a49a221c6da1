/**
 * What a state-changing commit changed, returned by every KV operation that changes a review, so
 * that one function (`review/effects.ts`) applies what follows: fast-path dispatch, aborts, status
 * callbacks, logs, and later feeds and metrics.
 *
 * @module
 */
import type { ReviewRecord, ReviewStatus } from "./records.ts";

/** A queue message sent in the commit: start an attempt of this review. */
export interface Dispatch {
  reviewId: string;
  /** Must equal the review's `dispatchToken` for the message to start anything. */
  token: string;
  delayMs: number;
}

/** One review record written by the commit, with the status it had before (`null`: created). */
export interface ReviewChange {
  review: ReviewRecord;
  from: ReviewStatus | null;
}

/** A running attempt the commit asked to stop (cancel or supersede); its holder ends it. */
export interface AbortRequest {
  reviewId: string;
  leaseToken: string;
}

/**
 * Everything one commit changed.
 *
 * @example
 * ```ts
 * const changes = emptyChanges();
 * changes.reviews.push({ review, from: "queued" });
 * ```
 */
export interface Changes {
  reviews: ReviewChange[];
  dispatched: Array<{ dispatch: Dispatch; review: ReviewRecord }>;
  aborts: AbortRequest[];
}

/**
 * A result that changed nothing.
 *
 * @example
 * ```ts
 * const none = emptyChanges(); // { reviews: [], dispatched: [], aborts: [] }
 * ```
 */
export function emptyChanges(): Changes {
  return { reviews: [], dispatched: [], aborts: [] };
}

/**
 * Concatenates the changes of several commits, in commit order.
 *
 * @example
 * ```ts
 * const all = mergeChanges(a, b);
 * ```
 */
export function mergeChanges(...list: Changes[]): Changes {
  const out = emptyChanges();
  for (const c of list) {
    out.reviews.push(...c.reviews);
    out.dispatched.push(...c.dispatched);
    out.aborts.push(...c.aborts);
  }
  return out;
}
