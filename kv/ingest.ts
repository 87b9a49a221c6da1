/**
 * Storing a new review: deduplication, supersede of older reviews of the same pull request, and
 * either a slot at once or a place in the owner's pending line — one atomic commit (plus one more
 * per batch of superseded reviews when a pull request has very many unfinished ones).
 *
 * @module
 */
import { getManyBatched } from "./batch.ts";
import { type Changes, mergeChanges } from "./changes.ts";
import { retryTransaction } from "./commit.ts";
import { keys } from "./keys.ts";
import { OwnerTxn, readOwner, type TxnContext } from "./owner_txn.ts";
import type { CancelRequest, OwnerState, ReviewRecord } from "./records.ts";
import { isTerminal, requestStopIn, transition } from "./transitions.ts";

/** How long a webhook delivery id is remembered for deduplication (30 days). */
export const DELIVERY_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** Unfinished reviews of one pull request read when superseding (more are left to the pipeline). */
export const MAX_PULL_REVIEWS_READ = 200;
/** Reviews superseded in the creating commit (each costs a check); the rest in later commits. */
const SUPERSEDE_IN_CREATE = 20;

/**
 * Which older reviews of the same pull request a new one supersedes: `newer` only those whose
 * webhook is older than this one's (`prUpdatedAt`, so a late delivery of an old push supersedes
 * nothing); `all` every one of another head (the head GitHub reports now); `none` nothing.
 */
export type SupersedeMode = "newer" | "all" | "none";

/** What {@link createReview} did. */
export interface CreateReviewResult {
  review: ReviewRecord;
  /** `false` when an existing review was returned (same id, delivery, or PR head). */
  created: boolean;
  changes: Changes;
}

/**
 * Whether an existing review of the same head stands in for a new one. A cancelled review, or one
 * asked to stop, never does. With `again` (a reopened pull request, a push) only one that has not
 * read the pull request from GitHub yet does: a running review may have seen the pull request
 * closed, or at another head, before this event, and would end without reviewing this head.
 */
function standsIn(existing: ReviewRecord, again: boolean): boolean {
  if (existing.status === "cancelled" || existing.cancelRequested) return false;
  return again ? existing.status === "pending" || existing.status === "queued" : true;
}

/**
 * The review's dedupe keys and its owner's entry, in one `getMany`: a new webhook's review costs
 * this read, the pull request's unfinished reviews, and its commit.
 */
async function findExisting(kv: Deno.Kv, review: ReviewRecord, again: boolean) {
  const lookups: Deno.KvKey[] = [keys.owner(review.owner), keys.review(review.id)];
  if (review.deliveryId) lookups.push(keys.byDelivery(review.deliveryId));
  const headKey = review.headSha
    ? keys.byHead(review.repo, review.pullNumber, review.headSha)
    : undefined;
  if (headKey) lookups.push(headKey);
  const [ownerEntry, ...entries] = await getManyBatched<unknown>(kv, lookups);
  const owner = ownerEntry as Deno.KvEntryMaybe<OwnerState>;
  const [byId, ...indexes] = entries;
  if (byId.value) return { entries, owner, existing: byId.value as ReviewRecord };
  for (const [i, index] of indexes.entries()) {
    if (typeof index.value !== "string") continue;
    const found = await kv.get<ReviewRecord>(keys.review(index.value));
    if (!found.value) continue;
    const isHead = headKey !== undefined && i === indexes.length - 1;
    if (!isHead || standsIn(found.value, again)) return { entries, owner, existing: found.value };
  }
  return { entries, owner, existing: undefined };
}

/** Unfinished reviews of the same pull request and owner that `review` supersedes. */
async function toSupersede(kv: Deno.Kv, review: ReviewRecord, mode: SupersedeMode) {
  if (mode === "none" || !review.headSha) return [];
  const ids = await Array.fromAsync(
    kv.list<string>(
      { prefix: keys.prActiveOf(review.repo, review.pullNumber) },
      { limit: MAX_PULL_REVIEWS_READ },
    ),
  );
  const records = await getManyBatched<ReviewRecord>(kv, ids.map((e) => keys.review(e.value)));
  return records.filter((e): e is Deno.KvEntry<ReviewRecord> => {
    const old = e.value;
    if (!old || isTerminal(old) || old.id === review.id) return false;
    if (old.owner.type !== review.owner.type || old.owner.id !== review.owner.id) return false;
    // A review whose head is not known yet (created through the API) learns it when it runs.
    if (!old.headSha || old.headSha === review.headSha) return false;
    if (mode === "all") return true;
    return old.prUpdatedAt !== undefined && review.prUpdatedAt !== undefined &&
      old.prUpdatedAt < review.prUpdatedAt;
  });
}

/**
 * Stores a new `pending` review, or returns the existing one for the same id, webhook delivery
 * or pull request head. Older unfinished reviews of the same pull request are superseded as
 * `supersede` says: pending and queued ones end at once, running ones are asked to stop. Takes a
 * slot at once when the owner has one free and nobody waiting.
 *
 * @example
 * ```ts
 * const { review, created, changes } = await createReview(ctx, record, { supersede: "newer" });
 * ```
 */
export async function createReview(
  ctx: TxnContext,
  review: ReviewRecord,
  options: { supersede: SupersedeMode; again?: boolean },
): Promise<CreateReviewResult> {
  const { kv } = ctx;
  let rest: ReviewRecord[] = [];
  const request: CancelRequest = {
    reason: "superseded",
    message: `superseded by review ${review.id} for head ${review.headSha}`,
    at: ctx.now,
  };
  const created = await retryTransaction(`createReview ${review.id}`, async () => {
    const { entries, owner, existing } = await findExisting(kv, review, options.again ?? false);
    if (existing) {
      return { review: existing, created: false, changes: mergeChanges() };
    }
    const older = await toSupersede(kv, review, options.supersede);
    const now = older.slice(0, SUPERSEDE_IN_CREATE);
    rest = older.slice(SUPERSEDE_IN_CREATE).map((e) => e.value);
    const snapshot = await readOwner(kv, review.owner, {
      defaultLimit: ctx.limit,
      extra: now.length,
      entry: owner,
    });
    const txn = new OwnerTxn(ctx, review.owner, snapshot);
    txn.op.check(...entries);
    for (const entry of now) {
      txn.op.check(entry);
      requestStopIn(txn, entry.value, request, ctx.now);
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
    let stored: ReviewRecord;
    if (txn.canStartNow) {
      stored = txn.takeSlotAndDispatch(review, null);
    } else {
      txn.addPending(review);
      stored = txn.putReview(review, null);
    }
    if (!(await txn.commit())) return undefined;
    return { review: stored, created: true, changes: txn.changes };
  });
  // Pull requests with very many unfinished reviews: the rest, one commit each.
  const more: Changes[] = [];
  for (const old of created.created ? rest : []) {
    const t = await transition(
      ctx,
      old.id,
      "supersede",
      (current, txn) => requestStopIn(txn, current, request, ctx.now),
    );
    if (t) more.push(t.changes);
  }
  return { ...created, changes: mergeChanges(created.changes, ...more) };
}
