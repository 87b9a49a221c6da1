/**
 * Posting a review's result on its pull request, once: under the pull request's publish claim
 * (one review posts at a time), to the comment we already have (the saved pointer, else our own
 * hidden marker found on GitHub), creating one only when none exists, and looking again after an
 * answer that leaves it unknown whether GitHub created it. The pointer is saved with the
 * completion, in one fenced commit.
 *
 * @module
 */
import { finishAttempt } from "../kv/attempts.ts";
import { type ClaimOptions, claimPublish, releasePublishClaim } from "../kv/publish.ts";
import { getFindings } from "../kv/queries.ts";
import type { Finding, PullComment, ReviewRecord } from "../kv/records.ts";
import { formatReviewComment, REVIEW_COMMENT_MARKER } from "./comment.ts";
import { type ReviewDeps, txnContext } from "./deps.ts";
import { AttemptAborted, ReviewError } from "./errors.ts";
import {
  type CommentClient,
  DEFAULT_GITHUB_TIMEOUT_MS,
  type GitHubClient,
  type PostedComment,
} from "./github.ts";
import { postInlineReview } from "./inline_publish.ts";

/** How long a publish claim lasts; posting stops taking new steps well before it runs out. */
export const PUBLISH_CLAIM_MS = 300_000;
/** A claim whose attempt lost its lease is free after this (longer than one GitHub request). */
export const CLAIM_ORPHAN_MS = 60_000;
/** Pause between looks at a claim another review holds. */
const CLAIM_POLL_MS = 100;

/**
 * How this service takes publish claims, now.
 *
 * @example
 * ```ts
 * const claim = await claimPublish(kv, id, leaseToken, claimOptions(deps));
 * ```
 */
export function claimOptions(deps: ReviewDeps): ClaimOptions {
  return {
    now: deps.clock(),
    claimMs: PUBLISH_CLAIM_MS,
    skewMs: deps.config.CLOCK_SKEW_MS,
    orphanMs: CLAIM_ORPHAN_MS,
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Posts `body` to the pull request's one review comment: updates `knownId` if it still exists,
 * else adopts the comment that carries our marker, else creates one. After an ambiguous create
 * (5xx, timeout, no answer) it looks for the marker again before giving up, so a retry never
 * posts a second comment.
 *
 * @example
 * ```ts
 * const comment = await postOnce(github, "octo/app", 12, body, pointer.commentId);
 * ```
 */
export async function postOnce(
  github: CommentClient,
  repo: string,
  pullNumber: number,
  body: string,
  knownId?: number,
  deadline: AbortSignal = new AbortController().signal,
): Promise<PostedComment> {
  // Every step starts only while the publish claim has time left for it.
  const step = () => {
    if (deadline.aborted) {
      throw new ReviewError("posting ran out of its publish claim's time", {
        retryable: true,
        reason: "github_error",
      });
    }
  };
  if (knownId !== undefined) {
    step();
    const updated = await github.updateComment(repo, knownId, body);
    if (updated) return updated;
  }
  step();
  const found = await github.findComment(repo, pullNumber, REVIEW_COMMENT_MARKER);
  step();
  // A comment we may not edit is not ours to adopt: post our own.
  const adopted = found ? await github.updateComment(repo, found.id, body) : null;
  if (adopted) return adopted;
  step();
  try {
    return await github.createComment(repo, pullNumber, body);
  } catch (error) {
    if (!(error instanceof ReviewError) || !error.ambiguous) throw error;
    const created = await github.findComment(repo, pullNumber, REVIEW_COMMENT_MARKER);
    if (created) return created;
    throw error;
  }
}

/**
 * The head's inline review (posted once, adopted when it exists). A refusal that retrying cannot
 * change (a 422 for a line GitHub does not place, a 403) is logged: the summary comment holds every
 * finding, so the review still completes.
 */
async function inlineReview(
  deps: ReviewDeps,
  github: GitHubClient,
  review: ReviewRecord,
  findings: Finding[],
  deadline: AbortSignal,
) {
  if (!review.headSha) return null;
  if (deadline.aborted) {
    throw new ReviewError("posting ran out of its publish claim's time", {
      retryable: true,
      reason: "github_error",
    });
  }
  try {
    return await postInlineReview(github, {
      repo: review.repo,
      pullNumber: review.pullNumber,
      headSha: review.headSha,
      reviewId: review.id,
      findings,
      anchors: review.scope?.anchors ?? [],
      minSeverity: review.scope?.minSeverity ?? deps.config.MIN_SEVERITY,
      knownId: review.inlineReviewId,
    }, (message, context) => deps.log("warn", message, { ...context, review: review.id }));
  } catch (error) {
    if (error instanceof ReviewError && !error.retryable) {
      deps.log("warn", "inline review not posted", { reviewId: review.id, error: error.message });
      return null;
    }
    throw error;
  }
}

/**
 * Says on the pull request why a review failed and that `/review` retries it, in the one summary
 * comment; best-effort (a failure to post is logged, never thrown) and only when no other review
 * of the pull request is posting.
 *
 * @example
 * ```ts
 * await publishFailure(deps, review, leaseToken, "agent timed out");
 * ```
 */
export async function publishFailure(
  deps: ReviewDeps,
  review: ReviewRecord,
  leaseToken: string,
  reason: string,
): Promise<void> {
  const { kv } = deps;
  try {
    const claim = await claimPublish(kv, review.id, leaseToken, claimOptions(deps));
    if (claim.kind !== "claimed") return;
    try {
      const body = formatReviewComment({
        repo: review.repo,
        pullNumber: review.pullNumber,
        headSha: review.headSha ?? "",
        findings: [],
        reviewId: review.id,
        failedBecause: reason,
        leftOut: review.scope?.leftOut,
        configProblems: review.scope?.configProblems,
      });
      const github = deps.github.forInstallation(review.installationId);
      await postOnce(github, review.repo, review.pullNumber, body, claim.pointer.commentId);
    } finally {
      await releasePublishClaim(kv, review.repo, review.pullNumber, leaseToken);
    }
  } catch (error) {
    deps.log("warn", "could not say on the pull request why the review failed", {
      reviewId: review.id,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/**
 * Publishes a review whose result is stored and completes it (freeing its slot) in the commit
 * that saves the comment pointer. `claimed`: the pointer as the commit that stored the result
 * left it, with this attempt's claim taken; else the claim is taken here, waiting while another
 * review of the pull request posts. Throws {@link AttemptAborted} when the lease is gone or a
 * stop was requested before posting began; GitHub failures as {@link ReviewError}s.
 *
 * @example
 * ```ts
 * await publishAndComplete(deps, review, leaseToken, signal);
 * ```
 */
export async function publishAndComplete(
  deps: ReviewDeps,
  review: ReviewRecord,
  leaseToken: string,
  signal: AbortSignal,
  claimed?: PullComment,
): Promise<void> {
  const { kv } = deps;
  const github = deps.github.forInstallation(review.installationId);
  const pointer = claimed ?? await claimToPost(deps, review.id, leaseToken, signal);
  try {
    // A claim taken with the result: a stop or shutdown since then is honoured as it would have
    // been before a claim of its own (the claim is released below).
    if (claimed) signal.throwIfAborted();
    const findings = await getFindings(kv, review.id, review.findingCount);
    const body = formatReviewComment({
      repo: review.repo,
      pullNumber: review.pullNumber,
      headSha: review.headSha ?? "",
      summary: review.summary,
      findings,
      reviewId: review.id,
      leftOut: review.scope?.leftOut,
      configProblems: review.scope?.configProblems,
    });
    // Two GitHub requests' worth of margin before the claim runs out (each is bounded by 30 s).
    const deadline = AbortSignal.timeout(PUBLISH_CLAIM_MS - 2 * DEFAULT_GITHUB_TIMEOUT_MS);
    const comment = await postOnce(
      github,
      review.repo,
      review.pullNumber,
      body,
      pointer.commentId,
      deadline,
    );
    const inline = await inlineReview(deps, github, review, findings, deadline);
    const t = await finishAttempt(txnContext(deps), review.id, leaseToken, {
      status: "completed",
      terminalReason: "completed",
      patch: {
        commentId: comment.id,
        commentUrl: comment.url,
        ...(inline ? { inlineReviewId: inline.id, inlineReviewUrl: inline.url } : {}),
      },
    }, { commentId: comment.id, commentUrl: comment.url });
    if (!t) throw new AttemptAborted("lease_lost");
    deps.apply(t.changes);
  } catch (error) {
    await releasePublishClaim(kv, review.repo, review.pullNumber, leaseToken).catch((e) =>
      deps.log("warn", "could not release the publish claim", {
        reviewId: review.id,
        error: String(e),
      })
    );
    throw error;
  }
}

/** Takes the publish claim, waiting while another review of the pull request holds it. */
async function claimToPost(
  deps: ReviewDeps,
  reviewId: string,
  leaseToken: string,
  signal: AbortSignal,
): Promise<PullComment> {
  while (true) {
    signal.throwIfAborted();
    const claim = await claimPublish(deps.kv, reviewId, leaseToken, claimOptions(deps));
    if (claim.kind === "lost") throw new AttemptAborted("lease_lost");
    if (claim.kind === "stop_requested") throw new AttemptAborted("stop_requested");
    if (claim.kind === "claimed") return claim.pointer;
    // Another review of this pull request is posting: wait for it (bounded by its claim).
    await sleep(Math.min(CLAIM_POLL_MS, Math.max(1, claim.until - deps.clock())), signal);
  }
}
