/**
 * One attempt of one review: fetch the pull request and its diff, hold the agent session, store
 * the findings, post the comment, finish. The attempt runs under a lease that it renews; losing
 * the lease (cancel, supersede, takeover) aborts it.
 *
 * @module
 */
import {
  finishAttempt,
  handBack,
  type Outcome,
  renewLease,
  scheduleRetry,
  storeFindings,
  updateRunning,
} from "../kv/lifecycle.ts";
import { getFindings, getPullComment, savePullComment } from "../kv/queries.ts";
import type { ReviewRecord } from "../kv/records.ts";
import { runAgentSession } from "./agent.ts";
import { formatReviewComment } from "./comment.ts";
import { type ReviewDeps, txnContext } from "./deps.ts";
import { AttemptAborted, ReviewError } from "./errors.ts";
import { mapAgentFinding } from "./findings.ts";
import { filesFromDiff, type PullRequestInfo, truncateDiff } from "./github.ts";
import { submitReview } from "./service.ts";
import { truncateUtf8 } from "./text.ts";

/** Bounds of text kept in the review record (which must stay under 64 KiB). */
const MAX_SUMMARY_BYTES = 16_384;
const MAX_ERROR_BYTES = 2_048;

/**
 * Runs the attempt of a review that {@link startAttempt} just moved to `running`. Never throws:
 * every outcome ends in a KV commit (finish, retry, hand-back) or in the lease already lost.
 *
 * @example
 * ```ts
 * await runAttempt(deps, started, controller.signal);
 * ```
 */
export async function runAttempt(
  deps: ReviewDeps,
  started: ReviewRecord,
  external: AbortSignal,
): Promise<void> {
  const leaseToken = started.lease!.token;
  const controller = new AbortController();
  const forward = () => controller.abort(external.reason);
  external.addEventListener("abort", forward, { once: true });
  const renewEvery = Math.max(50, Math.floor(deps.config.LEASE_MS / 3));
  const renewal = setInterval(() => {
    renewLease(deps.kv, started.id, leaseToken, deps.clock() + deps.config.LEASE_MS)
      .then((alive) => {
        if (!alive) controller.abort(new AttemptAborted("lease_lost"));
      })
      .catch((error) => deps.log("warn", "lease renewal failed", { reviewId: started.id, error }));
  }, renewEvery);
  deps.notify(started);
  try {
    const ready = started.resultStored
      ? started
      : await produceResult(deps, started, leaseToken, controller.signal);
    if (ready) await postAndComplete(deps, ready, leaseToken);
  } catch (error) {
    await handleFailure(deps, started, leaseToken, error, controller.signal);
  } finally {
    clearInterval(renewal);
    external.removeEventListener("abort", forward);
  }
}

/** Ends the review (freeing its slot and starting the owner's next) and tells who listens. */
async function end(deps: ReviewDeps, id: string, leaseToken: string, outcome: Outcome) {
  const errorMessage = outcome.errorMessage && truncateUtf8(outcome.errorMessage, MAX_ERROR_BYTES);
  const t = await finishAttempt(txnContext(deps), id, leaseToken, { ...outcome, errorMessage });
  if (!t) return;
  const { review } = t;
  deps.log(review.status === "failed" ? "warn" : "info", `review ${review.status}`, {
    reviewId: review.id,
    repo: review.repo,
    pullNumber: review.pullNumber,
    attempts: review.attempts,
    terminalReason: review.terminalReason,
    errorMessage: review.errorMessage,
    findings: review.findingCount,
  });
  deps.notify(review);
  deps.afterDispatch(t.dispatched);
}

/** A fresh review of the head a pull request has moved to. */
function followUpReview(
  review: ReviewRecord,
  pr: PullRequestInfo,
  deps: ReviewDeps,
): ReviewRecord {
  return {
    id: crypto.randomUUID(),
    source: review.source,
    owner: review.owner,
    repo: review.repo,
    pullNumber: review.pullNumber,
    headSha: pr.headSha,
    baseSha: pr.baseSha,
    title: pr.title,
    status: "pending",
    attempts: 0,
    handBacks: 0,
    createdAt: deps.clock(),
    findingCount: 0,
    skippedEvents: 0,
  };
}

function lost(): never {
  throw new AttemptAborted("lease_lost");
}

async function produceResult(
  deps: ReviewDeps,
  review: ReviewRecord,
  leaseToken: string,
  signal: AbortSignal,
): Promise<ReviewRecord | null> {
  const { config, github } = deps;
  const pr = await github.getPullRequest(review.repo, review.pullNumber);
  signal.throwIfAborted();
  if (review.headSha && pr.headSha !== review.headSha) {
    await end(deps, review.id, leaseToken, {
      status: "cancelled",
      terminalReason: "superseded",
      errorMessage: `pull request head moved from ${review.headSha} to ${pr.headSha}`,
    });
    // Webhooks can arrive out of order: make sure the head GitHub reports now gets its review
    // (a no-op when its own webhook already created one).
    if (review.source === "webhook") {
      await submitReview(deps, followUpReview(review, pr, deps), { supersede: true });
    }
    return null;
  }
  if (pr.state === "closed") {
    await end(deps, review.id, leaseToken, {
      status: "cancelled",
      terminalReason: "cancelled",
      errorMessage: "pull request is closed",
    });
    return null;
  }
  const withHead = await updateRunning(deps.kv, review.id, leaseToken, (r) => ({
    ...r,
    headSha: pr.headSha,
    baseSha: pr.baseSha,
    title: pr.title,
  })) ?? lost();
  const fullDiff = await github.getDiff(review.repo, review.pullNumber);
  signal.throwIfAborted();
  const { diff } = truncateDiff(fullDiff, config.MAX_DIFF_BYTES);
  if (!config.AGENT_URL) {
    throw new ReviewError("AGENT_URL is not configured", {
      retryable: false,
      reason: "agent_error",
    });
  }
  const result = await runAgentSession({
    reviewId: review.id,
    attempt: withHead.attempts,
    repo: review.repo,
    pullNumber: review.pullNumber,
    headSha: pr.headSha,
    baseSha: pr.baseSha,
    title: pr.title,
    model: review.model ?? config.AGENT_MODEL,
    prompt: review.prompt,
    diff,
    files: filesFromDiff(fullDiff),
    sessionInput: review.sessionInput,
  }, {
    agentUrl: config.AGENT_URL,
    token: review.authToken ?? config.AGENT_TOKEN,
    fetch: deps.agentFetch,
    signal,
    idleTimeoutMs: config.AGENT_IDLE_TIMEOUT_MS,
    totalTimeoutMs: config.REVIEW_TIMEOUT_MS,
    log: (message, context) => deps.log("warn", message, { reviewId: review.id, ...context }),
  });
  if (result.droppedFindings > 0) {
    deps.log("warn", "agent sent more findings than are kept", {
      reviewId: review.id,
      kept: result.findings.length,
      dropped: result.droppedFindings,
    });
  }
  const findings = result.findings.map(mapAgentFinding);
  await storeFindings(deps.kv, review.id, findings);
  return await updateRunning(deps.kv, review.id, leaseToken, (r) => ({
    ...r,
    sessionId: result.sessionId ?? r.sessionId,
    summary: result.summary === undefined
      ? undefined
      : truncateUtf8(result.summary, MAX_SUMMARY_BYTES),
    findingCount: findings.length,
    skippedEvents: result.skippedEvents,
    resultStored: true,
  })) ?? lost();
}

async function postAndComplete(deps: ReviewDeps, review: ReviewRecord, leaseToken: string) {
  const { kv, github } = deps;
  const existing = await getPullComment(kv, review.repo, review.pullNumber);
  const findings = await getFindings(kv, review.id, review.findingCount);
  const body = formatReviewComment({
    repo: review.repo,
    pullNumber: review.pullNumber,
    headSha: review.headSha ?? "",
    summary: review.summary,
    findings,
    reviewId: review.id,
  });
  const comment = await github.upsertComment(
    review.repo,
    review.pullNumber,
    body,
    existing?.commentId,
  );
  // Saved at once, not with the completion: if this process dies before completing, the retry
  // updates this comment instead of posting a second one.
  if (existing?.commentId !== comment.id) {
    await savePullComment(kv, review.repo, review.pullNumber, {
      commentId: comment.id,
      commentUrl: comment.url,
    });
  }
  await end(deps, review.id, leaseToken, {
    status: "completed",
    terminalReason: "completed",
    patch: { commentId: comment.id, commentUrl: comment.url },
  });
}

/** Delay before retry `attempt + 1`: base × 2^(attempt − 1). */
function retryDelayMs(baseMs: number, attempt: number): number {
  return baseMs * 2 ** Math.max(0, attempt - 1);
}

async function handleFailure(
  deps: ReviewDeps,
  review: ReviewRecord,
  leaseToken: string,
  error: unknown,
  signal: AbortSignal,
) {
  const ctx = txnContext(deps);
  const reason = signal.aborted ? signal.reason : error;
  if (reason instanceof AttemptAborted) {
    if (reason.kind === "shutdown") {
      const t = await handBack(ctx, review.id, leaseToken, deps.config.MAX_HAND_BACKS);
      if (t) deps.afterDispatch(t.dispatched);
    }
    // lease_lost / cancelled: whoever took the lease already wrote the review's state.
    return;
  }
  const failure = error instanceof ReviewError ? error : new ReviewError(
    `internal error: ${error instanceof Error ? error.message : String(error)}`,
    { retryable: true, reason: "internal_error", cause: error },
  );
  if (!(error instanceof ReviewError)) {
    deps.log("error", "attempt failed unexpectedly", {
      reviewId: review.id,
      attempt: review.attempts,
      error: error instanceof Error ? error.stack : String(error),
    });
  }
  if (failure.retryable && review.attempts < deps.config.MAX_ATTEMPTS) {
    const delay = retryDelayMs(deps.config.RETRY_BASE_DELAY_MS, review.attempts);
    const message = truncateUtf8(failure.message, MAX_ERROR_BYTES);
    const t = await scheduleRetry(ctx, review.id, leaseToken, message, delay);
    if (t) {
      deps.log("warn", "attempt failed; retrying", {
        reviewId: review.id,
        attempt: review.attempts,
        delayMs: delay,
        error: failure.message,
      });
      deps.notify(t.review);
      deps.afterDispatch(t.dispatched);
    }
    return;
  }
  await end(deps, review.id, leaseToken, {
    status: "failed",
    terminalReason: failure.reason,
    errorMessage: failure.message,
  });
}
