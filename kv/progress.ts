/**
 * A running review's progress: the agent's session id, latest status line, findings so far and
 * usage on the record, and the last events in `["review_events", id]`, written together in one
 * commit fenced by the attempt's lease.
 *
 * @module
 */
import { retryTransaction } from "./commit.ts";
import { keys } from "./keys.ts";
import type { ReviewEvent, ReviewEventLog, ReviewRecord } from "./records.ts";
import { kvValueBytes, MAX_RECORD_BYTES, truncateForKv } from "./size.ts";
import { holdsLease } from "./transitions.ts";

/** Events kept per review; older ones are dropped first. */
export const MAX_REVIEW_EVENTS = 60;
/** Bound of one event's message, as KV measures it. */
export const MAX_EVENT_MESSAGE_BYTES = 512;

/** The fields of a running review that progress writes. */
export type ProgressPatch = Partial<
  Pick<ReviewRecord, "sessionId" | "progress" | "findingsSoFar" | "usage">
>;

/** Progress not written yet, handed to the commit that stores a review's result. */
export interface PendingProgress {
  patch: ProgressPatch;
  events: ReviewEvent[];
}

/**
 * `review` with the progress `patch` when the record still fits one KV value with it, else
 * unchanged: progress is advisory and never makes a record too large to write.
 *
 * @example
 * ```ts
 * const next = withProgress(review, { progress: { message: "reading", at: now } });
 * ```
 */
export function withProgress(review: ReviewRecord, patch: ProgressPatch | undefined): ReviewRecord {
  if (!patch || Object.keys(patch).length === 0) return review;
  const next = { ...review, ...patch };
  return kvValueBytes(next) <= MAX_RECORD_BYTES ? next : review;
}

/**
 * Appends `events` to a log, keeping the last {@link MAX_REVIEW_EVENTS}, each message bounded,
 * and the whole log within one KV value.
 *
 * @example
 * ```ts
 * appendEvents([], [{ at: 1, type: "status", message: "reading" }]).length; // 1
 * ```
 */
export function appendEvents(log: ReviewEvent[], events: ReviewEvent[]): ReviewEvent[] {
  const bounded = events.map((e) => ({
    ...e,
    message: truncateForKv(e.message, MAX_EVENT_MESSAGE_BYTES),
  }));
  const out = [...log, ...bounded].slice(-MAX_REVIEW_EVENTS);
  while (out.length > 1 && kvValueBytes({ events: out }) > MAX_RECORD_BYTES) out.shift();
  return out;
}

/**
 * Writes progress to a running review and appends to its event log, if this attempt still holds
 * the lease; `null` when it does not (the attempt must stop).
 *
 * @example
 * ```ts
 * await recordProgress(kv, id, leaseToken, { progress: { message: "reading", at: now } }, []);
 * ```
 */
export function recordProgress(
  kv: Deno.Kv,
  reviewId: string,
  leaseToken: string,
  patch: ProgressPatch,
  events: ReviewEvent[],
): Promise<ReviewRecord | null> {
  return retryTransaction(`recordProgress ${reviewId}`, async () => {
    const [entry, log] = await kv.getMany<[ReviewRecord, ReviewEventLog]>([
      keys.review(reviewId),
      keys.reviewEvents(reviewId),
    ]);
    if (!holdsLease(entry.value, leaseToken)) return null;
    const before = entry.value!;
    // Progress is advisory: a record it would make too large keeps its previous progress.
    const patched = withProgress(before, patch);
    const record = patched === before ? before : { ...patched, rev: (before.rev ?? 0) + 1 };
    const op = kv.atomic().check(entry, log);
    if (record !== before) op.set(entry.key, record);
    if (events.length) {
      op.set(log.key, { events: appendEvents(log.value?.events ?? [], events) });
    }
    return (await op.commit()).ok ? record : undefined;
  });
}
