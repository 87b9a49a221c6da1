/**
 * Stopping reviews from outside their attempt: cancel through the API, and supersede once GitHub
 * confirms which head a pull request is at. A running review is only marked; its attempt ends it.
 *
 * @module
 */
import { getManyBatched } from "./batch.ts";
import { type Changes, mergeChanges } from "./changes.ts";
import { keys } from "./keys.ts";
import { MAX_PULL_REVIEWS_READ } from "./ingest.ts";
import type { TxnContext } from "./owner_txn.ts";
import type { ReviewRecord } from "./records.ts";
import {
  holdsLease,
  isTerminal,
  requestStopIn,
  type Transition,
  transition,
} from "./transitions.ts";

/** Result of {@link cancelReview}. */
export type CancelResult =
  /** Ended at once (it was pending or queued), or asked to stop (it is running). */
  | { kind: "cancelled"; transition: Transition }
  /** Already asked to stop; its attempt has not ended it yet. */
  | { kind: "stopping"; review: ReviewRecord }
  | { kind: "finished"; review: ReviewRecord }
  | { kind: "not_found" };

/**
 * Cancels a review that has not finished: a pending one leaves the line, a queued one frees its
 * slot, a running one is asked to stop (its attempt closes the agent session, then frees the slot).
 *
 * @example
 * ```ts
 * const r = await cancelReview(ctx, id, "no longer needed");
 * ```
 */
export async function cancelReview(
  ctx: TxnContext,
  reviewId: string,
  reason: string,
): Promise<CancelResult> {
  let current: ReviewRecord | undefined;
  const t = await transition(ctx, reviewId, "cancelReview", (review, txn) => {
    current = review;
    return requestStopIn(
      txn,
      review,
      { reason: "cancelled", message: reason, at: ctx.now },
      ctx.now,
    );
  });
  if (t) return { kind: "cancelled", transition: t };
  if (!current) return { kind: "not_found" };
  return isTerminal(current)
    ? { kind: "finished", review: current }
    : { kind: "stopping", review: current };
}

/**
 * Supersedes the other unfinished reviews of `review`'s pull request whose head differs, once
 * GitHub has said that `review.headSha` is the pull request's head, in a read made after the
 * commit with versionstamp `readAfter`. Only reviews created before that commit (a later one may
 * be for a newer push) — compared by versionstamp, KV's own commit order, never by instances'
 * clocks — and only while `review` itself still runs under `leaseToken` with no stop requested,
 * checked in each commit.
 *
 * @example
 * ```ts
 * const changes = await supersedeOthers(ctx, running, leaseToken, started.versionstamp);
 * ```
 */
export async function supersedeOthers(
  ctx: TxnContext,
  review: ReviewRecord,
  leaseToken: string,
  readAfter: string,
): Promise<Changes> {
  const ids = await Array.fromAsync(
    ctx.kv.list<string>(
      { prefix: keys.prActiveOf(review.repo, review.pullNumber) },
      { limit: MAX_PULL_REVIEWS_READ },
    ),
  );
  // A `pr_active` entry is written once, by the commit that created its review.
  const before = ids.filter((e) => e.versionstamp < readAfter);
  const others = await getManyBatched<ReviewRecord>(
    ctx.kv,
    before.map((e) => keys.review(e.value)),
  );
  const stale = (other: ReviewRecord | null): other is ReviewRecord =>
    other !== null && other.id !== review.id && !isTerminal(other) &&
    other.headSha !== undefined && other.headSha !== review.headSha;
  const changes: Changes[] = [];
  for (const { value: other } of others) {
    if (!stale(other)) continue;
    const request = {
      reason: "superseded" as const,
      message: `superseded by review ${review.id}: the pull request's head is ${review.headSha}`,
      at: ctx.now,
    };
    const t = await transition(ctx, other.id, "supersede", async (current, txn) => {
      if (!stale(current)) return null;
      const self = await ctx.kv.get<ReviewRecord>(keys.review(review.id));
      if (!holdsLease(self.value, leaseToken) || self.value!.cancelRequested) return null;
      txn.op.check(self);
      return requestStopIn(txn, current, request, ctx.now);
    });
    if (t) changes.push(t.changes);
  }
  return mergeChanges(...changes);
}

/**
 * Stops every unfinished review of a closed pull request: pending and queued ones end at once
 * (`pr_closed`), freeing their slots; running ones are asked to stop and their attempts end them.
 * With `closedAt` (the close's `updated_at`), reviews of a later push or reopen, or created
 * after it, are left alone: a late or redelivered close stops only what it closed. Returns what
 * changed and how many reviews it stopped.
 *
 * @example
 * ```ts
 * const { changes, stopped } = await cancelPullRequest(ctx, "octo/app", 12, "closed", closedAt);
 * ```
 */
export async function cancelPullRequest(
  ctx: TxnContext,
  repo: string,
  pullNumber: number,
  message: string,
  closedAt?: number,
  reason: "pr_closed" | "cancelled" = "pr_closed",
): Promise<{ changes: Changes; stopped: number }> {
  const request = { reason, message, at: ctx.now };
  const closedBy = (review: ReviewRecord) =>
    closedAt === undefined || (review.prUpdatedAt ?? review.createdAt) <= closedAt;
  const changes: Changes[] = [];
  // Every page: a review past the first ones must stop too (each stop is its own commit).
  let cursor: string | undefined;
  do {
    const page = ctx.kv.list<string>(
      { prefix: keys.prActiveOf(repo, pullNumber) },
      { limit: MAX_PULL_REVIEWS_READ, cursor },
    );
    for await (const { value: id } of page) {
      const t = await transition(
        ctx,
        id,
        "closePullRequest",
        (review, txn) => closedBy(review) ? requestStopIn(txn, review, request, ctx.now) : null,
      );
      if (t) changes.push(t.changes);
    }
    cursor = page.cursor || undefined;
  } while (cursor);
  return { changes: mergeChanges(...changes), stopped: changes.length };
}
