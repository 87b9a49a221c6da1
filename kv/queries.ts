/**
 * Read-only access patterns: one function each.
 *
 * @module
 */
import { withLockRetry } from "./commit.ts";
import { keys } from "./keys.ts";
import type {
  Finding,
  Owner,
  OwnerState,
  ReviewEvent,
  ReviewEventLog,
  ReviewRecord,
  ReviewStatus,
} from "./records.ts";

/**
 * Reads one review record.
 *
 * @example
 * ```ts
 * const review = await getReview(kv, "r1");
 * ```
 */
export async function getReview(kv: Deno.Kv, id: string): Promise<ReviewRecord | null> {
  return (await withLockRetry(() => kv.get<ReviewRecord>(keys.review(id)))).value;
}

/**
 * Reads a review's stored findings (the first `count`).
 *
 * @example
 * ```ts
 * const findings = await getFindings(kv, review.id, review.findingCount);
 * ```
 */
export async function getFindings(kv: Deno.Kv, id: string, count: number): Promise<Finding[]> {
  if (count === 0) return [];
  const entries = await withLockRetry(() =>
    Array.fromAsync(kv.list<Finding>({ prefix: keys.findingsOf(id) }, { limit: count }))
  );
  return entries.map((e) => e.value);
}

/**
 * Reads a review's event log, oldest first (empty when it has none).
 *
 * @example
 * ```ts
 * const events = await getReviewEvents(kv, "r1");
 * ```
 */
export async function getReviewEvents(kv: Deno.Kv, id: string): Promise<ReviewEvent[]> {
  const entry = await withLockRetry(() => kv.get<ReviewEventLog>(keys.reviewEvents(id)));
  return entry.value?.events ?? [];
}

/** A page of reviews, newest first. */
export interface ReviewPage {
  reviews: ReviewRecord[];
  cursor: string | null;
}

/** An owner filter: `type` and `id`, or an `id` of either type. */
export type OwnerFilter = { type?: Owner["type"]; id: string };

/**
 * Lists reviews newest first, for one owner or for everyone, optionally of one status and one
 * repository. A filtered page may hold fewer than `limit` reviews and still have a cursor.
 *
 * @example
 * ```ts
 * const page = await listReviews(kv, { owner: { type: "org", id: "1" }, limit: 20 });
 * ```
 */
export async function listReviews(
  kv: Deno.Kv,
  options: {
    owner?: OwnerFilter;
    status?: ReviewStatus;
    /** `owner/name`, compared without case. */
    repo?: string;
    limit: number;
    cursor?: string;
  },
): Promise<ReviewPage> {
  const repo = options.repo?.toLowerCase();
  const { owner } = options;
  const prefix = !owner
    ? keys.byTimeAll()
    : owner.type
    ? keys.byOwnerOf({ type: owner.type, id: owner.id })
    : keys.byOwnerIdOf(owner.id);
  const iter = kv.list<string>({ prefix }, { reverse: true, cursor: options.cursor });
  const reviews: ReviewRecord[] = [];
  let scanned = 0;
  // Status and repository filters scan the index; bound the scan so one request never reads
  // everything (the cursor goes on from where it stopped).
  const maxScan = options.limit * 50;
  for await (const entry of iter) {
    scanned++;
    const review = await getReview(kv, entry.value);
    if (
      review && (!options.status || review.status === options.status) &&
      (!repo || review.repo.toLowerCase() === repo)
    ) reviews.push(review);
    if (reviews.length >= options.limit || scanned >= maxScan) {
      return { reviews, cursor: iter.cursor || null };
    }
  }
  return { reviews, cursor: null };
}

/**
 * Reads an owner's counters (zeros for an owner never seen).
 *
 * @example
 * ```ts
 * const { active, pending } = await getOwnerState(kv, { type: "user", id: "7" });
 * ```
 */
export async function getOwnerState(
  kv: Deno.Kv,
  owner: Pick<Owner, "type" | "id">,
): Promise<OwnerState | null> {
  return (await kv.get<OwnerState>(keys.owner(owner))).value;
}

/**
 * Checks that KV answers a write and a read (the health probe).
 *
 * @example
 * ```ts
 * await pingKv(kv);
 * ```
 */
export async function pingKv(kv: Deno.Kv): Promise<void> {
  await withLockRetry(() => kv.set(keys.health(), Date.now()));
  await kv.get(keys.health());
}
