/**
 * Records for the KV layer's own tests.
 *
 * @module
 */
import type { ReviewRecord } from "./records.ts";

/**
 * A new pending review of `o/r#1` for `user:1`; `over` sets what the test cares about.
 *
 * @example
 * ```ts
 * const r = pendingReview({ id: "r1", pullNumber: 2 });
 * ```
 */
export function pendingReview(
  over: Partial<ReviewRecord> & Pick<ReviewRecord, "id">,
): ReviewRecord {
  return {
    source: "api",
    owner: { type: "user", id: "1" },
    repo: "o/r",
    pullNumber: 1,
    status: "pending",
    attempts: 0,
    handBacks: 0,
    createdAt: 1,
    findingCount: 0,
    skippedEvents: 0,
    ...over,
  };
}

/**
 * A review running under the attempt lease `leaseToken` (expiring in a minute), built on
 * {@link pendingReview}.
 *
 * @example
 * ```ts
 * await kv.set(["reviews", "r1"], runningReview({ id: "r1" }, "lease-1"));
 * ```
 */
export function runningReview(
  over: Partial<ReviewRecord> & Pick<ReviewRecord, "id">,
  leaseToken: string,
): ReviewRecord {
  return pendingReview({
    status: "running",
    attempts: 1,
    lease: { token: leaseToken, instance: "i", expiresAt: Date.now() + 60_000 },
    ...over,
  });
}
