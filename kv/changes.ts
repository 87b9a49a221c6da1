/**
 * What a state-changing commit changed, returned by every KV operation that changes a review, so
 * that one function (`review/effects.ts`) applies what follows: fast-path dispatch, aborts, status
 * callbacks, logs, and later feeds and metrics.
 *
 * @module
 */
import type { ReviewRecord, ReviewStatus } from "./records.ts";

/**
 * Where the queue transport keeps a message it sent, so that a later commit can remove it
 * (`kv-table`: the message's key). Only the transport that made it interprets it.
 */
export type MessageRef = Deno.KvKey;

/** A queue message sent in the commit: start an attempt of this review. */
export interface Dispatch {
  reviewId: string;
  /** Must equal the review's `dispatchToken` for the message to start anything. */
  token: string;
  delayMs: number;
  /**
   * Where the transport keeps the message, when it can remove it (`kv-table`; `kv-queue` cannot):
   * a same-process start removes it in the start commit, since a running review no longer needs
   * it (an expired lease is recovered by the sweeper, not by the message).
   */
  ref?: MessageRef;
}

/**
 * Why a review went back to `queued` (`retry`: a failed attempt; `hand_back`: an instance shut
 * down; `deferral`: an agent limit; `repair`: the sweeper found it stalled), or `progress` for a
 * running review's progress write (no status change).
 */
export type ChangeCause = "retry" | "hand_back" | "deferral" | "repair" | "progress";

/** One review record written by the commit, with the status it had before (`null`: created). */
export interface ReviewChange {
  review: ReviewRecord;
  from: ReviewStatus | null;
  cause?: ChangeCause;
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
 * What a progress write (or a commit carrying a running review's progress) changed: the record,
 * its status unchanged, labelled `progress` for the live feed and the metrics.
 *
 * @example
 * ```ts
 * deps.apply(progressChanges(written));
 * ```
 */
export function progressChanges(review: ReviewRecord): Changes {
  return {
    reviews: [{ review, from: review.status, cause: "progress" }],
    dispatched: [],
    aborts: [],
  };
}

/**
 * Labels the change of `reviewId` with why it was sent back, when the commit did queue it again
 * (a review whose stop was requested ends instead, and keeps no label).
 *
 * @example
 * ```ts
 * labelRequeue(t?.changes, id, "retry");
 * ```
 */
export function labelRequeue(
  changes: Changes | undefined,
  reviewId: string,
  cause: ChangeCause,
): void {
  for (const c of changes?.reviews ?? []) {
    if (c.review.id === reviewId && c.review.status === "queued") c.cause = cause;
  }
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
