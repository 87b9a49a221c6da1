/**
 * The pull request's comment pointer and the claim that lets one review at a time post to it, so
 * two reviews of one pull request never both create a comment, and a stale result never lands
 * over a newer one while both post.
 *
 * @module
 */
import { retryTransaction } from "./commit.ts";
import { keys } from "./keys.ts";
import type { PullComment, ReviewRecord } from "./records.ts";
import { holdsLease } from "./transitions.ts";

/** Result of {@link claimPublish}. */
export type ClaimResult =
  | { kind: "claimed"; pointer: PullComment }
  | { kind: "busy"; until: number }
  /** A cancel or supersede asked the review to stop: post nothing. */
  | { kind: "stop_requested" }
  | { kind: "lost" };

/**
 * Takes the right to post this review's result: only while the attempt holds its lease and no
 * stop was requested, and only when no other review's claim is live (a claim counts as expired
 * `skewMs` after its `expiresAt`, so a clock running ahead does not steal it).
 *
 * @example
 * ```ts
 * const claim = await claimPublish(kv, id, leaseToken, { now, claimMs: 120_000, skewMs: 5_000 });
 * ```
 */
export function claimPublish(
  kv: Deno.Kv,
  reviewId: string,
  leaseToken: string,
  options: { now: number; claimMs: number; skewMs: number },
): Promise<ClaimResult> {
  return retryTransaction(`claimPublish ${reviewId}`, async () => {
    const entry = await kv.get<ReviewRecord>(keys.review(reviewId));
    const review = entry.value;
    if (!holdsLease(review, leaseToken)) return { kind: "lost" };
    if (review!.cancelRequested) return { kind: "stop_requested" };
    const pointer = await kv.get<PullComment>(keys.prComment(review!.repo, review!.pullNumber));
    const claim = pointer.value?.claim;
    if (claim && claim.reviewId !== reviewId && claim.expiresAt + options.skewMs > options.now) {
      return { kind: "busy", until: claim.expiresAt + options.skewMs };
    }
    const next: PullComment = {
      ...pointer.value,
      claim: { reviewId, leaseToken, expiresAt: options.now + options.claimMs },
    };
    const result = await kv.atomic().check(entry, pointer).set(pointer.key, next).commit();
    return result.ok ? { kind: "claimed", pointer: next } : undefined;
  });
}

/**
 * Gives up this review's publish claim (after a failed post), so others need not wait for it to
 * expire.
 *
 * @example
 * ```ts
 * await releasePublishClaim(kv, "octo/app", 12, id);
 * ```
 */
export function releasePublishClaim(
  kv: Deno.Kv,
  repo: string,
  pullNumber: number,
  reviewId: string,
): Promise<boolean> {
  return retryTransaction(`releasePublishClaim ${reviewId}`, async () => {
    const pointer = await kv.get<PullComment>(keys.prComment(repo, pullNumber));
    if (pointer.value?.claim?.reviewId !== reviewId) return false;
    const { claim: _claim, ...rest } = pointer.value;
    return (await kv.atomic().check(pointer).set(pointer.key, rest).commit()).ok ? true : undefined;
  });
}
