/**
 * Storing a new review: deduplication, supersede of older reviews of the same pull request, and
 * either a slot at once or a place in the owner's pending line — one atomic commit.
 *
 * @module
 */
import { retryTransaction } from "./commit.ts";
import { keys } from "./keys.ts";
import { type Dispatch, OwnerTxn, readOwner, type TxnContext } from "./owner_txn.ts";
import type { ReviewRecord } from "./records.ts";

/** How long a webhook delivery id is remembered for deduplication (30 days). */
export const DELIVERY_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** What {@link createReview} did. */
export interface CreateReviewResult {
  review: ReviewRecord;
  /** `false` when an existing review was returned (same id, delivery, or PR head). */
  created: boolean;
  /** Older reviews of the same pull request that this one superseded. */
  superseded: ReviewRecord[];
  dispatched: Dispatch[];
}

async function findExisting(kv: Deno.Kv, review: ReviewRecord) {
  const lookups: Deno.KvKey[] = [keys.review(review.id)];
  if (review.deliveryId) lookups.push(keys.byDelivery(review.deliveryId));
  if (review.headSha) lookups.push(keys.byHead(review.repo, review.pullNumber, review.headSha));
  const entries = await kv.getMany<unknown[]>(lookups);
  const [byId, ...indexes] = entries;
  if (byId.value) return { entries, existingId: review.id };
  const hit = indexes.find((e) => typeof e.value === "string");
  return { entries, existingId: hit ? (hit.value as string) : undefined };
}

async function olderReviewsOfPull(kv: Deno.Kv, review: ReviewRecord) {
  const ids = await Array.fromAsync(
    kv.list<string>({ prefix: keys.prActiveOf(review.repo, review.pullNumber) }),
  );
  if (ids.length === 0) return [];
  const records = await kv.getMany<ReviewRecord[]>(ids.map((e) => keys.review(e.value)));
  return records.filter((e): e is Deno.KvEntry<ReviewRecord> =>
    e.value !== null &&
    e.value.owner.type === review.owner.type && e.value.owner.id === review.owner.id &&
    e.value.headSha !== review.headSha
  );
}

/**
 * Stores a new `pending` review, or returns the existing one for the same id, webhook delivery
 * or pull request head. Older unfinished reviews of the same pull request are superseded when
 * `supersede` is set. Takes a slot at once when the owner has one free and nobody waiting.
 *
 * @example
 * ```ts
 * const { review, created } = await createReview(ctx, record, { supersede: true });
 * ```
 */
export function createReview(
  ctx: TxnContext,
  review: ReviewRecord,
  options: { supersede: boolean },
): Promise<CreateReviewResult> {
  const { kv } = ctx;
  return retryTransaction(`createReview ${review.id}`, async () => {
    const { entries, existingId } = await findExisting(kv, review);
    if (existingId) {
      const existing = await kv.get<ReviewRecord>(keys.review(existingId));
      if (existing.value) {
        return { review: existing.value, created: false, superseded: [], dispatched: [] };
      }
    }
    const older = options.supersede && review.headSha ? await olderReviewsOfPull(kv, review) : [];
    const snapshot = await readOwner(kv, review.owner, ctx.limit + older.length);
    const txn = new OwnerTxn(ctx, review.owner, snapshot);
    txn.op.check(...entries);
    const superseded: ReviewRecord[] = [];
    for (const entry of older) {
      const old = entry.value;
      txn.op.check(entry);
      if (old.status === "pending") txn.removePending(old);
      else txn.freeSlot();
      const ended: ReviewRecord = {
        ...old,
        status: "cancelled",
        terminalReason: "superseded",
        errorMessage: `superseded by review ${review.id} for head ${review.headSha}`,
        finishedAt: ctx.now,
        lease: undefined,
      };
      txn.putReview(ended);
      superseded.push(ended);
    }
    txn.fillFreeSlots();
    txn.op
      .set(keys.byTime(review.createdAt, review.id), review.id)
      .set(keys.byOwner(review.owner, review.createdAt, review.id), review.id)
      .set(keys.byOwnerId(review.owner.id, review.createdAt, review.id), review.id)
      .set(keys.prActive(review.repo, review.pullNumber, review.id), review.id);
    // GitHub redelivers within days; the dedupe key need not live forever.
    if (review.deliveryId) {
      txn.op.set(keys.byDelivery(review.deliveryId), review.id, { expireIn: DELIVERY_TTL_MS });
    }
    if (review.headSha) {
      txn.op.set(keys.byHead(review.repo, review.pullNumber, review.headSha), review.id);
    }
    let stored = review;
    if (txn.canStartNow) {
      stored = txn.takeSlotAndDispatch(review);
    } else {
      txn.addPending(review);
      txn.putReview(review);
    }
    if (!(await txn.commit())) return undefined;
    return { review: stored, created: true, superseded, dispatched: txn.dispatched };
  });
}
