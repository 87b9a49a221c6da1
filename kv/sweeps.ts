/**
 * The sweeps' KV operations, each O(work in flight) rather than O(everything ever stored):
 * recovering reviews nobody works on, filling free slots of owners with work, and removing
 * finished reviews past their retention in bounded batches. When and how often they run is the
 * sweeper's policy (`queue/sweeper.ts`).
 *
 * @module
 */
import { getManyBatched } from "./batch.ts";
import { type Changes, labelRequeue, mergeChanges } from "./changes.ts";
import { withLockRetry } from "./commit.ts";
import { keys } from "./keys.ts";
import { ownerLimit, type TxnContext } from "./owner_txn.ts";
import { fillOwner } from "./owners.ts";
import type { Owner, OwnerState, ReviewRecord } from "./records.ts";
import { attemptLimit, endIn, stopOutcome, transition } from "./transitions.ts";

/** Options of {@link recoverStalled}. */
export interface RecoverOptions {
  maxAttempts: number;
  /** A queued review not started this long after it was due is dispatched again. */
  overdueMs: number;
  /** A lease counts as expired only this long after its `expiresAt` (clocks may disagree). */
  skewMs: number;
  instance: string;
}

function needsRecovery(review: ReviewRecord, now: number, options: RecoverOptions): boolean {
  if (review.status === "running") {
    return review.lease !== undefined && review.lease.expiresAt + options.skewMs < now;
  }
  if (review.status !== "queued") return false;
  const due = review.dueAt ?? review.queuedAt ?? now;
  if (due + options.overdueMs < now) return true;
  return review.handedBackBy !== undefined && review.handedBackBy !== options.instance;
}

/**
 * Recovers in-flight reviews nobody is working on: a running review whose lease expired (its
 * process died; this counts as an attempt) is dispatched again, failed after `maxAttempts`, or
 * cancelled when its stop had been requested; a queued review whose message is long overdue, or
 * that another instance handed back, is dispatched again. Reads only in-flight reviews.
 *
 * @example
 * ```ts
 * const changes = await recoverStalled(ctx, { maxAttempts: 3, overdueMs: 60_000, skewMs: 5_000,
 *   instance: "i1" });
 * ```
 */
export async function recoverStalled(ctx: TxnContext, options: RecoverOptions): Promise<Changes> {
  const inflight = await withLockRetry(() =>
    Array.fromAsync(ctx.kv.list({ prefix: keys.inflightAll() }))
  );
  const ids = inflight.map(({ key }) => String(key[1]));
  const records = await getManyBatched<ReviewRecord>(ctx.kv, ids.map((id) => keys.review(id)));
  const changes: Changes[] = [];
  for (const { value } of records) {
    if (!value || !needsRecovery(value, ctx.now, options)) continue;
    const t = await transition(ctx, value.id, "recoverStalled", (review, txn) => {
      if (!needsRecovery(review, ctx.now, options)) return null;
      if (review.status === "running") {
        if (review.cancelRequested) {
          return endIn(txn, review, stopOutcome(review.cancelRequested), ctx.now);
        }
        if (review.attempts >= attemptLimit(review, options.maxAttempts)) {
          return endIn(txn, review, {
            status: "failed",
            terminalReason: "interrupted",
            errorMessage: `attempt lease expired ${review.attempts} times ` +
              `(last holder ${review.lease!.instance})`,
          }, ctx.now);
        }
      }
      // A hand-back's own message may reach no live listener soon (KV queues do not cross
      // processes promptly): this instance takes it now; the old message turns stale.
      return txn.dispatch({ ...review, handedBackBy: undefined }, review);
    });
    labelRequeue(t?.changes, value.id, "repair");
    if (t) changes.push(t.changes);
  }
  return mergeChanges(...changes);
}

/**
 * Claims pending reviews for every owner with work and free slots (after a raised limit, or a
 * commit that could claim only part of what it freed). Reads only owners with work.
 *
 * @example
 * ```ts
 * const changes = await fillActiveOwners(ctx);
 * ```
 */
export async function fillActiveOwners(ctx: TxnContext): Promise<Changes> {
  const active = await withLockRetry(() =>
    Array.fromAsync(ctx.kv.list<Owner>({ prefix: keys.activeOwners() }))
  );
  const states = await getManyBatched<OwnerState>(ctx.kv, active.map((e) => keys.owner(e.value)));
  const changes: Changes[] = [];
  for (const { value } of states) {
    if (!value || value.pending === 0 || value.active >= ownerLimit(value, ctx.limit)) continue;
    changes.push(await fillOwner(ctx, value.owner));
  }
  return mergeChanges(...changes);
}

/** Findings deleted per commit (an atomic operation takes at most 1,000 mutations). */
const FINDINGS_DELETED_PER_COMMIT = 500;

/**
 * Deletes finished reviews that ended before `cutoff`, with their findings and index entries, at
 * most `maxReviews` per call (oldest first). Returns how many were removed.
 *
 * @example
 * ```ts
 * await purgeFinished(kv, Date.now() - 30 * 86_400_000, 100);
 * ```
 */
export async function purgeFinished(
  kv: Deno.Kv,
  cutoff: number,
  maxReviews: number,
): Promise<number> {
  const due = await withLockRetry(() =>
    Array.fromAsync(
      kv.list<string>({ start: keys.byFinishAll(), end: keys.byFinish(cutoff, "") }, {
        limit: maxReviews,
      }),
    )
  );
  for (const index of due) {
    const id = index.value;
    const prefix = keys.findingsOf(id);
    while (true) {
      const findings = await withLockRetry(() =>
        Array.fromAsync(kv.list({ prefix }, { limit: FINDINGS_DELETED_PER_COMMIT }))
      );
      if (findings.length === 0) break;
      const op = kv.atomic();
      for (const f of findings) op.delete(f.key);
      await withLockRetry(() => op.commit());
    }
    const review = (await withLockRetry(() => kv.get<ReviewRecord>(keys.review(id)))).value;
    const op = kv.atomic().delete(index.key).delete(keys.review(id)).delete(keys.reviewEvents(id));
    if (review) {
      op.delete(keys.byTime(review.createdAt, id))
        .delete(keys.byOwner(review.owner, review.createdAt, id))
        .delete(keys.byOwnerId(review.owner.id, review.createdAt, id));
      if (review.headSha) {
        const head = keys.byHead(review.repo, review.pullNumber, review.headSha);
        const pointer = await kv.get<string>(head);
        // Only this review's own head entry; a later review of the same head keeps its own.
        if (pointer.value === id) op.check(pointer).delete(head);
      }
    }
    await withLockRetry(() => op.commit());
  }
  return due.length;
}
