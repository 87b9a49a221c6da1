/**
 * The shared shape of every review state change: read the review and its owner, plan the change
 * on an {@link OwnerTxn}, commit, retry on conflict; and the steps plans share (ending a review,
 * asking a running one to stop).
 *
 * @module
 */
import type { Changes } from "./changes.ts";
import { retryTransaction } from "./commit.ts";
import { keys } from "./keys.ts";
import { OwnerTxn, readOwner, type TxnContext } from "./owner_txn.ts";
import {
  type CancelRequest,
  type ReviewRecord,
  TERMINAL_STATUSES,
  type TerminalReason,
} from "./records.ts";
import { RecordTooLargeError } from "./size.ts";

/** How a review ends. */
export interface Outcome {
  status: "completed" | "failed" | "cancelled";
  terminalReason: TerminalReason;
  errorMessage?: string;
  patch?: Partial<ReviewRecord>;
}

/** The record a transition wrote, and everything its commit changed. */
export interface Transition {
  review: ReviewRecord;
  changes: Changes;
}

/**
 * Whether a status is final.
 *
 * @example
 * ```ts
 * isTerminal({ ...review, status: "completed" }); // true
 * ```
 */
export function isTerminal(review: ReviewRecord): boolean {
  return TERMINAL_STATUSES.includes(review.status);
}

/**
 * Whether the attempt with `leaseToken` holds the review.
 *
 * @example
 * ```ts
 * holdsLease(review, started.lease!.token);
 * ```
 */
export function holdsLease(review: ReviewRecord | null, leaseToken: string): boolean {
  return review?.status === "running" && review.lease?.token === leaseToken;
}

/** Attempts a review may take beyond `MAX_ATTEMPTS` once its result is stored (posting only). */
export const EXTRA_POSTING_ATTEMPTS = 2;

/**
 * The attempts a review may take: a review whose findings are stored only posts, which is cheap
 * and must not be lost to an agent's earlier failures.
 *
 * @example
 * ```ts
 * if (review.attempts < attemptLimit(review, 3)) retry();
 * ```
 */
export function attemptLimit(review: ReviewRecord, maxAttempts: number): number {
  return review.resultStored ? maxAttempts + EXTRA_POSTING_ATTEMPTS : maxAttempts;
}

/** Plans one change on a transaction; returns the record written, or `null` for no change. */
export type Plan = (
  review: ReviewRecord,
  txn: OwnerTxn,
) => ReviewRecord | null | Promise<ReviewRecord | null>;

/** The record without its large optional texts, so a final record always fits. */
function stripped(review: ReviewRecord): ReviewRecord {
  const { sessionInput: _s, prompt: _p, summary: _m, authToken: _a, ...rest } = review;
  return { ...rest, title: review.title?.slice(0, 200) };
}

/**
 * Runs a planned change of one review as one atomic commit over the review and its owner, retried
 * while another writer wins. A plan whose record would not fit one KV value ends the review as
 * failed instead, so the slot it holds moves on. `null` when the review is gone or the plan did
 * nothing.
 *
 * @example
 * ```ts
 * await transition(ctx, id, "cancel", (review, txn) => endIn(txn, review, outcome, ctx.now));
 * ```
 */
export function transition(
  ctx: TxnContext,
  reviewId: string,
  what: string,
  plan: Plan,
  options: { extraHeads?: number } = {},
): Promise<Transition | null> {
  return retryTransaction(`${what} ${reviewId}`, async () => {
    const entry = await ctx.kv.get<ReviewRecord>(keys.review(reviewId));
    if (!entry.value) return null;
    const owner = entry.value.owner;
    const snapshot = await readOwner(ctx.kv, owner, {
      defaultLimit: ctx.limit,
      extra: 1 + (options.extraHeads ?? 0),
    });
    let txn = new OwnerTxn(ctx, owner, snapshot);
    txn.op.check(entry);
    let review: ReviewRecord | null;
    try {
      review = await plan(entry.value, txn);
    } catch (error) {
      if (!(error instanceof RecordTooLargeError)) throw error;
      // Never strand a slot on a record that cannot be written: end the review, smaller.
      txn = new OwnerTxn(ctx, owner, snapshot);
      txn.op.check(entry);
      review = isTerminal(entry.value) ? null : endIn(txn, stripped(entry.value), {
        status: "failed",
        terminalReason: "internal_error",
        errorMessage: `${what}: ${error.message}`,
      }, ctx.now);
    }
    if (!review) return null;
    if (!(await txn.commit())) return undefined;
    return { review, changes: txn.changes };
  });
}

/**
 * Ends a review in a transaction: a pending one leaves the line, a queued or running one frees
 * its slot (the caller makes sure no attempt still streams for it).
 *
 * @example
 * ```ts
 * endIn(txn, review, { status: "completed", terminalReason: "completed" }, ctx.now);
 * ```
 */
export function endIn(
  txn: OwnerTxn,
  review: ReviewRecord,
  outcome: Outcome,
  now: number,
): ReviewRecord {
  if (review.status === "pending") txn.removePending(review);
  else txn.freeSlot();
  const ended: ReviewRecord = {
    ...review,
    ...outcome.patch,
    status: outcome.status,
    terminalReason: outcome.terminalReason,
    errorMessage: outcome.errorMessage ?? outcome.patch?.errorMessage ?? review.errorMessage,
    finishedAt: now,
    lease: undefined,
    dispatchToken: undefined,
    dueAt: undefined,
    handedBackBy: undefined,
  };
  if (outcome.status === "completed") ended.errorMessage = undefined;
  return txn.putReview(ended, review);
}

/**
 * Stops a review that has not finished. A pending or queued one ends at once (no session runs for
 * it). A running one is only marked: its slot stays taken until the attempt holding the lease has
 * closed its agent session and ends the review in its own commit (or its lease runs out), so an
 * owner never has more sessions open than slots. `null` when there is nothing to do.
 *
 * @example
 * ```ts
 * requestStopIn(txn, review, { reason: "cancelled", message: "by API", at: now }, now);
 * ```
 */
export function requestStopIn(
  txn: OwnerTxn,
  review: ReviewRecord,
  request: CancelRequest,
  now: number,
): ReviewRecord | null {
  if (isTerminal(review)) return null;
  if (review.status === "running") {
    if (review.cancelRequested) return null;
    const marked = txn.putReview({ ...review, cancelRequested: request }, review);
    txn.changes.aborts.push({ reviewId: review.id, leaseToken: review.lease!.token });
    return marked;
  }
  return endIn(txn, review, {
    status: "cancelled",
    terminalReason: request.reason,
    errorMessage: request.message,
  }, now);
}

/**
 * The outcome that ends a review whose stop was requested.
 *
 * @example
 * ```ts
 * await finishAttempt(ctx, id, token, stopOutcome(review.cancelRequested!));
 * ```
 */
export function stopOutcome(request: CancelRequest): Outcome {
  return { status: "cancelled", terminalReason: request.reason, errorMessage: request.message };
}
