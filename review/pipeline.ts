/**
 * One attempt of one review: fetch the pull request and its diff, hold the agent session, store
 * the findings, publish, finish. The attempt runs under a lease that {@link guardLease} renews and
 * watches; every write it makes is fenced by that lease, and it frees its slot only in its own
 * final commit, after its agent session has closed.
 *
 * @module
 */
import { acquireAgentSession } from "../kv/agent_limits.ts";
import {
  deferAttempt,
  finishAttempt,
  handBack,
  scheduleRetry,
  storeFindings,
  updateRunning,
} from "../kv/attempts.ts";
import { supersedeOthers } from "../kv/cancel.ts";
import { progressChanges } from "../kv/changes.ts";
import { type PendingProgress, recordProgress } from "../kv/progress.ts";
import { claimIn } from "../kv/publish.ts";
import { newReview, type PullComment, type ReviewRecord } from "../kv/records.ts";
import type { CachedRepoConfig } from "../kv/repo_configs.ts";
import { RecordTooLargeError, truncateForKv } from "../kv/size.ts";
import { attemptLimit, holdsLease, type Outcome, stopOutcome } from "../kv/transitions.ts";
import { type AgentSessionResult, runAgent } from "./agent_session.ts";
import { CALLBACK_TOKEN_HEADER, callbackSecret, callbackToken } from "./callback_token.ts";
import { type ReviewDeps, txnContext } from "./deps.ts";
import { AttemptAborted, MAX_ERROR_BYTES, ReviewError } from "./errors.ts";
import { mapAgentFinding } from "./findings.ts";
import type { PullRequestInfo } from "./github.ts";
import { guardLease } from "./lease_guard.ts";
import { trackProgress } from "./progress.ts";
import { claimOptions, publishAndComplete, publishFailure } from "./publish.ts";
import { checkReporter } from "./check_publish.ts";
import { type AttemptState, completeCheck, detailsUrl } from "./attempt_check.ts";
import { findingAnchors } from "./inline_publish.ts";
import { REPO_CONFIG_PATH, type RepoConfig } from "./repo_config.ts";
import { diffForAgent, loadRepoConfig } from "./repo_settings.ts";
import { getReview } from "../kv/queries.ts";
import { submitReview } from "./service.ts";
import { MAX_TITLE_BYTES } from "./webhook_payload.ts";

/** Bounds of text kept in the review record (which must stay under 64 KiB as KV measures it). */
const MAX_SUMMARY_BYTES = 16_384;

/**
 * Runs the attempt of a review that `startAttempt` just moved to `running`. Never throws: every
 * outcome ends in a KV commit (finish, retry, hand-back) or in the lease already lost.
 *
 * @example
 * ```ts
 * await runAttempt(deps, started.review, controller.signal, started.versionstamp);
 * ```
 */
export async function runAttempt(
  deps: ReviewDeps,
  started: ReviewRecord,
  external: AbortSignal,
  startVersionstamp: string,
): Promise<void> {
  const leaseToken = started.lease!.token;
  const controller = new AbortController();
  const forward = () => controller.abort(external.reason);
  // Shutdown may have begun while this attempt was being claimed.
  if (external.aborted) forward();
  else external.addEventListener("abort", forward, { once: true });
  const guard = guardLease(deps, started, controller);
  const attempt: AttemptState = {};
  try {
    const ready: Produced | null = started.resultStored ? { review: started } : await produceResult(
      deps,
      started,
      leaseToken,
      startVersionstamp,
      controller.signal,
      attempt,
    );
    if (ready) {
      await publishAndComplete(deps, ready.review, leaseToken, controller.signal, ready.claimed);
    }
  } catch (error) {
    await handleFailure(deps, started, leaseToken, error, controller.signal);
  } finally {
    external.removeEventListener("abort", forward);
    await guard.stop();
    await completeCheck(deps, started, attempt);
  }
}

/** Ends the review held by this attempt (freeing its slot and starting the owner's next). */
async function end(
  deps: ReviewDeps,
  id: string,
  leaseToken: string,
  outcome: Outcome | ((review: ReviewRecord) => Outcome),
) {
  const bounded = (o: Outcome): Outcome => ({
    ...o,
    errorMessage: o.errorMessage && truncateForKv(o.errorMessage, MAX_ERROR_BYTES),
  });
  const t = await finishAttempt(
    txnContext(deps),
    id,
    leaseToken,
    typeof outcome === "function" ? (r) => bounded(outcome(r)) : bounded(outcome),
  );
  if (t) deps.apply(t.changes);
}

/** A fresh review of the head a pull request has moved to. */
function followUpReview(
  review: ReviewRecord,
  pr: PullRequestInfo,
  deps: ReviewDeps,
): ReviewRecord {
  return newReview({
    id: crypto.randomUUID(),
    source: review.source,
    owner: review.owner,
    repo: review.repo,
    pullNumber: review.pullNumber,
    ...prFields(pr),
    createdAt: deps.clock(),
  });
}

function lost(): never {
  throw new AttemptAborted("lease_lost");
}

/** The pull request's fields a review keeps: head, base and title as GitHub reports them. */
function prFields(pr: PullRequestInfo): Pick<ReviewRecord, "headSha" | "baseSha" | "title"> {
  return {
    headSha: pr.headSha,
    baseSha: pr.baseSha,
    title: truncateForKv(pr.title, MAX_TITLE_BYTES),
  };
}

/**
 * The running review with the head GitHub has just confirmed, checked to be still this attempt's
 * and not asked to stop. A review that did not know its head (an API or `/review` review) stores
 * it now, before its agent session opens: from this commit on, a review of a newer push
 * supersedes this one while it runs (`supersedeOthers` and `createReview` read the stored
 * head), so a stale review never posts over a newer one. A review created with its head (a
 * webhook) has it stored already and others read nothing else here: a read suffices, and base
 * and title are written with the result (one commit fewer per review).
 */
async function confirmHead(
  deps: ReviewDeps,
  review: ReviewRecord,
  leaseToken: string,
  pr: PullRequestInfo,
): Promise<ReviewRecord> {
  const current = review.headSha === pr.headSha
    ? await getReview(deps.kv, review.id).then((r) => holdsLease(r, leaseToken) ? r : null)
    : await updateRunning(deps.kv, review.id, leaseToken, (r) => ({ ...r, ...prFields(pr) }));
  if (!current) lost();
  if (current.cancelRequested) throw new AttemptAborted("stop_requested");
  return { ...current, ...prFields(pr) };
}

/** A stored result, and the publish claim its commit took when the claim was free. */
interface Produced {
  review: ReviewRecord;
  claimed?: PullComment;
}

async function produceResult(
  deps: ReviewDeps,
  review: ReviewRecord,
  leaseToken: string,
  startVersionstamp: string,
  signal: AbortSignal,
  attempt: AttemptState,
): Promise<Produced | null> {
  const { config, kv } = deps;
  const github = deps.github.forInstallation(review.installationId);
  // The shared agent limits, before anything else: a review that must wait goes back through the
  // queue, keeping its slot and not counting the attempt, and costs GitHub nothing while it waits.
  const grant = await acquireAgentSession(kv, review.id, leaseToken, deps.clock(), {
    ratePerMinute: config.AGENT_RATE_PER_MINUTE,
    maxConcurrent: config.MAX_CONCURRENT_TOTAL,
    concurrencyWaitMs: config.AGENT_LIMIT_WAIT_MS,
  }) ?? lost();
  if (!grant.ok) {
    const why = grant.why === "rate"
      ? `waiting for AGENT_RATE_PER_MINUTE (${config.AGENT_RATE_PER_MINUTE}/min)`
      : `waiting for a free agent session (MAX_CONCURRENT_TOTAL ${config.MAX_CONCURRENT_TOTAL})`;
    // Waiters back off (up to 16× the wait, with jitter), so a long line of them costs KV little.
    const backoff = grant.why === "rate" ? 1 : 2 ** Math.min(4, review.deferrals ?? 0);
    const wait = grant.waitMs * backoff;
    await defer(deps, review.id, leaseToken, wait + Math.random() * Math.min(wait / 2, 5_000), why);
    return null;
  }
  // This read comes after the start commit: reviews created after that commit may be for a newer
  // push, and are never superseded by what it says.
  const pr = await github.getPullRequest(review.repo, review.pullNumber);
  signal.throwIfAborted();
  if (review.headSha && pr.headSha !== review.headSha) {
    // Webhooks can arrive out of order: make sure the head GitHub reports now gets its review (a
    // no-op when one of that head already stands), before this one ends, so whoever sees this
    // review superseded also finds its successor.
    if (review.source === "webhook") {
      await submitReview(deps, followUpReview(review, pr, deps), { supersede: "all" });
    }
    await end(deps, review.id, leaseToken, {
      status: "cancelled",
      terminalReason: "superseded",
      errorMessage: `pull request head moved from ${review.headSha} to ${pr.headSha}`,
    });
    return null;
  }
  if (pr.state === "closed") {
    await end(deps, review.id, leaseToken, {
      status: "cancelled",
      terminalReason: "pr_closed",
      errorMessage: "pull request is closed",
    });
    return null;
  }
  const withHead = await confirmHead(deps, review, leaseToken, pr);
  // GitHub has confirmed this head: older reviews of any other head of the pull request are stale.
  deps.apply(await supersedeOthers(txnContext(deps), withHead, leaseToken, startVersionstamp));
  const repoConfig = await loadRepoConfig(kv, github, review.repo, pr.baseSha);
  signal.throwIfAborted();
  const settings = repoConfig.config;
  const off = !settings.enabled
    ? `${REPO_CONFIG_PATH} says enabled: false`
    : !settings.auto_review && review.source === "webhook" && !review.command
    ? `${REPO_CONFIG_PATH} says auto_review: false (comment /review to ask for one)`
    : undefined;
  if (off) {
    await end(deps, review.id, leaseToken, {
      status: "cancelled",
      terminalReason: "disabled_by_config",
      errorMessage: off,
    });
    return null;
  }
  attempt.check = checkReporter(github, withHead, {
    log: (message, context) => deps.log("warn", message, context),
    clock: deps.clock,
    detailsUrl: detailsUrl(deps, review.id),
    // Check runs are made only in sessions: the first session need not look for one (a GitHub
    // request saved per review).
    fresh: sessionOrdinal(withHead) === 1,
  });
  attempt.check.start();
  const fullDiff = await github.getDiff(review.repo, review.pullNumber);
  signal.throwIfAborted();
  const { diff, files, leftOut } = diffForAgent(fullDiff, settings, config.MAX_DIFF_BYTES);
  const { agent } = deps;
  const progress = trackProgress(deps, withHead, leaseToken, () => {
    // The lease guard stops the attempt; a callback may have ended the review meanwhile.
    deps.log("info", "progress write found the lease gone", { reviewId: review.id });
  }, { ownOutcome: agent.decidesOutcome });
  progress.note("attempt", `attempt ${withHead.attempts}: ${agent.kind} agent session opening`);
  const callback = agent.decidesOutcome
    ? await callbackFor(deps, review.id, leaseToken)
    : undefined;
  const check = attempt.check;
  const onEvent: typeof progress.onEvent = (event) => {
    progress.onEvent(event);
    if (event.type === "status") check.progress(event.message);
  };
  let result: AgentSessionResult;
  try {
    result = await runAgent(agent, {
      reviewId: review.id,
      // The agent's idempotency key never repeats for two sessions.
      attempt: sessionOrdinal(withHead),
      repo: review.repo,
      pullNumber: review.pullNumber,
      headSha: pr.headSha,
      baseSha: pr.baseSha,
      title: pr.title,
      body: pr.body,
      headRef: pr.headRef,
      model: review.model ?? settings.model ?? config.AGENT_MODEL,
      instructions: [review.prompt, settings.instructions].filter(Boolean).join("\n\n") ||
        undefined,
      diff,
      files,
      sessionInput: review.sessionInput,
      authToken: review.authToken,
      // Only an earlier attempt can have written it: this one has not reported a session yet.
      previousSessionId: withHead.sessionId,
      callback,
    }, {
      signal,
      fetch: deps.agentFetch ?? fetch,
      totalTimeoutMs: config.REVIEW_TIMEOUT_MS,
      onEvent,
      checkpoint: progress.checkpoint,
      log: (message, context) => deps.log("warn", message, { reviewId: review.id, ...context }),
    });
  } catch (error) {
    await progress.flush();
    throw error;
  } finally {
    const usage = progress.usage();
    if (usage && usage !== review.usage) deps.reportUsage(review.id, usage);
  }
  if (agent.decidesOutcome) {
    await progress.flush();
    // Its callback ends the review; an agent that says it is done without one failed to report.
    throw new ReviewError(`${agent.kind} agent finished without reporting an outcome`, {
      retryable: true,
      reason: "agent_error",
    });
  }
  // What the session left unwritten goes with the result, one commit instead of two.
  const pending = await progress.handOver();
  try {
    const stored = await storeResult(
      deps,
      review,
      leaseToken,
      result,
      { pr, diff, leftOut, repoConfig },
      pending,
    );
    // The live feed hears of the session's last progress as it did from a progress write.
    deps.apply(progressChanges(stored.review));
    return stored;
  } catch (error) {
    // No result stored: the session's progress (its usage above all) is written on its own.
    await recordProgress(kv, review.id, leaseToken, pending.patch, pending.events).catch(() => {});
    throw error;
  }
}

/** What the result write needs from the attempt besides the agent's result. */
interface ResultContext {
  pr: PullRequestInfo;
  diff: string;
  leftOut: string[];
  repoConfig: CachedRepoConfig<RepoConfig>;
}

/**
 * Stores the findings and then the result on the record, each commit fenced by the lease; throws
 * {@link AttemptAborted} when the lease is gone. The result's commit also carries the session's
 * unwritten progress and, when it is free and no stop was requested, the publish claim: posting
 * follows at once, so it needs no claim commit of its own.
 */
async function storeResult(
  deps: ReviewDeps,
  review: ReviewRecord,
  leaseToken: string,
  result: AgentSessionResult,
  { pr, diff, leftOut, repoConfig }: ResultContext,
  pending: PendingProgress,
): Promise<Produced> {
  const { kv } = deps;
  const settings = repoConfig.config;
  if (result.droppedFindings > 0) {
    deps.log("warn", "agent sent more findings than are kept", {
      reviewId: review.id,
      kept: result.findings.length,
      dropped: result.droppedFindings,
    });
  }
  const findings = result.findings.map(mapAgentFinding);
  if (!(await storeFindings(kv, review.id, leaseToken, findings))) lost();
  let claimed: PullComment | undefined;
  const claimWithResult = async (op: Deno.AtomicOperation, next: ReviewRecord) => {
    claimed = undefined;
    if (next.cancelRequested) return;
    const claim = await claimIn(op, kv, next, leaseToken, claimOptions(deps));
    if (claim.kind === "claimed") claimed = claim.pointer;
  };
  const stored = await updateRunning(kv, review.id, leaseToken, (r) => ({
    ...r,
    ...prFields(pr),
    sessionId: result.sessionId ? truncateForKv(result.sessionId, 200) : r.sessionId,
    summary: result.summary === undefined
      ? undefined
      : truncateForKv(result.summary, MAX_SUMMARY_BYTES),
    findingCount: findings.length,
    skippedEvents: result.skippedEvents,
    resultStored: true,
    scope: {
      leftOut: leftOut.length ? leftOut : undefined,
      configProblems: repoConfig.problems.length ? repoConfig.problems : undefined,
      minSeverity: settings.min_severity,
      failOn: settings.fail_on,
      anchors: findingAnchors(diff, findings),
    },
  }), { progress: pending, also: claimWithResult }) ?? lost();
  return { review: stored, claimed };
}

/**
 * Which session of the review this is, counting from 1: every start counts one, including the
 * attempts that were handed back or deferred (they are not counted as attempts, but may have
 * opened an agent session and made a check run).
 */
function sessionOrdinal(review: ReviewRecord): number {
  return review.attempts + review.handBacks + (review.deferrals ?? 0);
}

/** Where and how the agent reports the outcome of this attempt. */
async function callbackFor(deps: ReviewDeps, reviewId: string, leaseToken: string) {
  const secret = callbackSecret(deps.config);
  const base = deps.config.PUBLIC_URL;
  if (!secret || !base) {
    throw new ReviewError("PUBLIC_URL and CALLBACK_SECRET are needed for agent callbacks", {
      retryable: false,
      reason: "agent_error",
    });
  }
  return {
    url: `${base.replace(/\/+$/, "")}/callbacks/reviews/${encodeURIComponent(reviewId)}`,
    headers: { [CALLBACK_TOKEN_HEADER]: await callbackToken(secret, reviewId, leaseToken) },
  };
}

/** Sends the review back to wait for an agent limit, without counting the attempt. */
async function defer(
  deps: ReviewDeps,
  id: string,
  leaseToken: string,
  delayMs: number,
  why: string,
  cause: "limit" | "agent_429" = "limit",
) {
  const delay = Math.round(Math.min(deps.config.MAX_RETRY_DELAY_MS, delayMs));
  const t = await deferAttempt(txnContext(deps), id, leaseToken, delay, why, cause);
  if (t) {
    deps.log("info", "review waits for an agent limit", { reviewId: id, delayMs: delay, why });
    deps.apply(t.changes);
  }
}

/** Delay before retry `attempt + 1`: base × 2^(attempt − 1), or what the other side asked for. */
function retryDelayMs(deps: ReviewDeps, attempt: number, failure: ReviewError): number {
  const backoff = deps.config.RETRY_BASE_DELAY_MS * 2 ** Math.max(0, attempt - 1);
  return Math.min(deps.config.MAX_RETRY_DELAY_MS, Math.max(backoff, failure.retryAfterMs ?? 0));
}

function classify(error: unknown): ReviewError {
  if (error instanceof ReviewError) return error;
  if (error instanceof RecordTooLargeError) {
    return new ReviewError(error.message, { retryable: false, reason: "internal_error" });
  }
  return new ReviewError(
    `internal error: ${error instanceof Error ? error.message : String(error)}`,
    { retryable: true, reason: "internal_error", cause: error },
  );
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
      if (t) deps.apply(t.changes);
    } else if (reason.kind === "stop_requested") {
      // The agent session has closed: end the review as the cancel or supersede asked.
      await end(
        deps,
        review.id,
        leaseToken,
        (current) =>
          current.cancelRequested ? stopOutcome(current.cancelRequested) : {
            status: "cancelled",
            terminalReason: "cancelled",
          },
      );
    }
    // lease_lost: whoever took the lease decides the review's state.
    return;
  }
  const failure = classify(error);
  // The agent's own rate limit (429): wait as it asks, without counting the attempt, up to a bound.
  const rateLimited = review.agentRateLimited ?? 0;
  if (failure.rateLimited && rateLimited < deps.config.MAX_RATE_LIMIT_DEFERRALS) {
    const delay = failure.retryAfterMs ?? retryDelayMs(deps, 1, failure);
    const why = `agent rate limit: ${failure.message}`;
    await defer(deps, review.id, leaseToken, delay, why, "agent_429");
    return;
  }
  if (!(error instanceof ReviewError)) {
    deps.log("error", "attempt failed unexpectedly", {
      reviewId: review.id,
      attempt: review.attempts,
      error: error instanceof Error ? error.stack : String(error),
    });
  }
  if (failure.retryable && review.attempts < attemptLimit(review, deps.config.MAX_ATTEMPTS)) {
    const delay = retryDelayMs(deps, review.attempts, failure);
    const message = truncateForKv(failure.message, MAX_ERROR_BYTES);
    const t = await scheduleRetry(ctx, review.id, leaseToken, message, delay, failure.reason);
    if (t) {
      deps.log("warn", "attempt failed; retrying", {
        reviewId: review.id,
        attempt: review.attempts,
        delayMs: delay,
        errorClass: failure.reason,
        error: failure.message,
      });
      deps.apply(t.changes);
    }
    return;
  }
  // Say why on the pull request before the slot is freed (best-effort, bounded by GitHub's own
  // request bounds), unless GitHub says the pull request is not there (404).
  const current = await getReview(deps.kv, review.id);
  const gone = (failure.cause as { status?: number } | undefined)?.status === 404;
  if (current?.lease?.token === leaseToken && !current.cancelRequested && !gone) {
    await publishFailure(deps, current, leaseToken, failure.message);
  }
  await end(deps, review.id, leaseToken, {
    status: "failed",
    terminalReason: failure.reason,
    errorMessage: failure.message,
  });
}
