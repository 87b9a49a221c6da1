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

/** When a publish claim is taken, how long it lasts, and when an older one counts as expired. */
export interface ClaimOptions {
  now: number;
  claimMs: number;
  skewMs: number;
  orphanMs: number;
}

/** Result of {@link claimPublish}. */
export type ClaimResult =
  | { kind: "claimed"; pointer: PullComment }
  | { kind: "busy"; until: number }
  /** A cancel or supersede asked the review to stop: post nothing. */
  | { kind: "stop_requested" }
  | { kind: "lost" };

/**
 * Takes the right to post this review's result: only while the attempt holds its lease and no
 * stop was requested, and only when no other claim is live. A claim counts as expired `skewMs`
 * after its `expiresAt` (a clock running ahead does not steal it), or once its attempt has lost
 * its lease and `orphanMs` (longer than one GitHub request) have passed since it was taken.
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
  options: ClaimOptions,
): Promise<ClaimResult> {
  return retryTransaction(`claimPublish ${reviewId}`, async () => {
    const entry = await kv.get<ReviewRecord>(keys.review(reviewId));
    const review = entry.value;
    if (!holdsLease(review, leaseToken)) return { kind: "lost" };
    if (review!.cancelRequested) return { kind: "stop_requested" };
    const op = kv.atomic().check(entry);
    const claim = await claimIn(op, kv, review!, leaseToken, options);
    if (claim.kind !== "claimed") return claim;
    return (await op.commit()).ok ? claim : undefined;
  });
}

/**
 * Adds the publish claim of `review` to `op`, with the checks it rests on, when no other claim is
 * live; else says until when another review holds it. The caller has checked that `review` is
 * held by `leaseToken` with no stop requested, and checks its entry in `op`: the commit that
 * stores a review's result takes the claim this way, so the posting that follows needs no claim
 * commit of its own.
 *
 * @example
 * ```ts
 * const claim = await claimIn(op, kv, review, leaseToken, { now, claimMs, skewMs, orphanMs });
 * ```
 */
export async function claimIn(
  op: Deno.AtomicOperation,
  kv: Deno.Kv,
  review: ReviewRecord,
  leaseToken: string,
  options: ClaimOptions,
): Promise<Extract<ClaimResult, { kind: "claimed" | "busy" }>> {
  const pointer = await kv.get<PullComment>(keys.prComment(review.repo, review.pullNumber));
  const claim = pointer.value?.claim;
  op.check(pointer);
  // A claim of this same review belongs to an earlier attempt, which stopped before its lease
  // (now ours) ran out.
  if (claim && claim.reviewId !== review.id && claim.expiresAt + options.skewMs > options.now) {
    const holder = await kv.get<ReviewRecord>(keys.review(claim.reviewId));
    const orphaned = !holdsLease(holder.value, claim.leaseToken) &&
      (claim.at ?? 0) + options.orphanMs + options.skewMs < options.now;
    if (!orphaned) return { kind: "busy", until: claim.expiresAt + options.skewMs };
    op.check(holder);
  }
  const next: PullComment = {
    ...pointer.value,
    claim: {
      reviewId: review.id,
      leaseToken,
      at: options.now,
      expiresAt: options.now + options.claimMs,
    },
  };
  op.set(pointer.key, next);
  return { kind: "claimed", pointer: next };
}

/**
 * Gives up this attempt's publish claim (after a failed post), so others need not wait for it to
 * expire. Only the attempt that took it (its lease token) can give it up.
 *
 * @example
 * ```ts
 * await releasePublishClaim(kv, "octo/app", 12, leaseToken);
 * ```
 */
export function releasePublishClaim(
  kv: Deno.Kv,
  repo: string,
  pullNumber: number,
  leaseToken: string,
): Promise<boolean> {
  return retryTransaction(`releasePublishClaim ${repo}#${pullNumber}`, async () => {
    const pointer = await kv.get<PullComment>(keys.prComment(repo, pullNumber));
    if (pointer.value?.claim?.leaseToken !== leaseToken) return false;
    const { claim: _claim, ...rest } = pointer.value;
    return (await kv.atomic().check(pointer).set(pointer.key, rest).commit()).ok ? true : undefined;
  });
}
