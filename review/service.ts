/**
 * The review domain's entry points for routes: submit, read, list, cancel.
 *
 * @module
 */
import { cancelPullRequest, cancelReview } from "../kv/cancel.ts";
import { createReview, type SupersedeMode } from "../kv/ingest.ts";
import {
  getFindings,
  getOwnerState,
  getReview,
  getReviewEvents,
  listReviews,
  type OwnerFilter,
} from "../kv/queries.ts";
import type { Finding, Owner, ReviewEvent, ReviewRecord, ReviewStatus } from "../kv/records.ts";
import { ownerLimit } from "../kv/owner_txn.ts";
import { type ReviewDeps, txnContext } from "./deps.ts";
import { readLatestRepoConfig } from "../kv/repo_configs.ts";
import { commandDone, markCommandDone } from "../kv/commands.ts";
import type { RepoConfig } from "./repo_config.ts";
import { type EventDecision, reviewFromCommand } from "./webhook_events.ts";

/** A review as the API shows it: no secrets, findings included on request. */
export type PublicReview = Omit<ReviewRecord, "authToken" | "dispatchToken" | "lease"> & {
  lease?: { instance: string; expiresAt: number };
  findings?: Finding[];
};

/**
 * Strips what must never leave the service (the agent bearer, the dispatch token).
 *
 * @example
 * ```ts
 * toPublicReview(record).authToken; // undefined
 * ```
 */
export function toPublicReview(review: ReviewRecord, findings?: Finding[]): PublicReview {
  const { authToken: _a, dispatchToken: _d, lease, ...rest } = review;
  // The lease token is the running attempt's capability; only who holds it and until when show.
  const shown: PublicReview = lease
    ? { ...rest, lease: { instance: lease.instance, expiresAt: lease.expiresAt } }
    : rest;
  return findings ? { ...shown, findings } : shown;
}

/**
 * Stores a review (deduplicated) and starts it when its owner has a free slot. `supersede` says
 * which older reviews of the pull request it replaces; `again` reviews a head once more although
 * it was reviewed before (a reopened pull request).
 *
 * @example
 * ```ts
 * const { review, created } = await submitReview(deps, record, { supersede: "newer" });
 * ```
 */
export async function submitReview(
  deps: ReviewDeps,
  record: ReviewRecord,
  options: { supersede: SupersedeMode; again?: boolean },
): Promise<{ review: ReviewRecord; created: boolean }> {
  const result = await createReview(txnContext(deps), record, options);
  deps.apply(result.changes);
  return { review: result.review, created: result.created };
}

/**
 * Reads a review with its findings.
 *
 * @example
 * ```ts
 * const review = await readReview(deps, "r1");
 * ```
 */
export async function readReview(deps: ReviewDeps, id: string): Promise<PublicReview | null> {
  const review = await getReview(deps.kv, id);
  if (!review) return null;
  return toPublicReview(review, await getFindings(deps.kv, id, review.findingCount));
}

/**
 * Reads a review's event log (its last progress events, oldest first); `null` for an unknown id.
 *
 * @example
 * ```ts
 * const log = await readReviewEvents(deps, "r1"); // { reviewId, status, events: [...] }
 * ```
 */
export async function readReviewEvents(
  deps: ReviewDeps,
  id: string,
): Promise<{ reviewId: string; status: ReviewStatus; events: ReviewEvent[] } | null> {
  const review = await getReview(deps.kv, id);
  if (!review) return null;
  return { reviewId: id, status: review.status, events: await getReviewEvents(deps.kv, id) };
}

/**
 * Stops the unfinished reviews of a closed pull request (its running ones close their agent
 * sessions first), except those of a later push or reopen than `closedAt`; returns how many it
 * stopped.
 *
 * @example
 * ```ts
 * await closePullRequest(deps, "octo/app", 12); // 2
 * ```
 */
export async function closePullRequest(
  deps: ReviewDeps,
  repo: string,
  pullNumber: number,
  closedAt?: number,
): Promise<number> {
  const { changes, stopped } = await cancelPullRequest(
    txnContext(deps),
    repo,
    pullNumber,
    "the pull request was closed",
    closedAt,
  );
  deps.apply(changes);
  return stopped;
}

/** Result of {@link cancel}. */
export type CancelOutcome =
  /** Ended as cancelled. */
  | { kind: "cancelled"; review: PublicReview }
  /** Running: its attempt was asked to stop and has not ended it yet. */
  | { kind: "stopping"; review: PublicReview }
  | { kind: "finished"; review: PublicReview }
  | { kind: "not_found" };

/**
 * Cancels a review: a pending or queued one ends at once; a running one is asked to stop, and this
 * waits up to `waitMs` for its attempt to close the agent session and end it.
 *
 * @example
 * ```ts
 * const outcome = await cancel(deps, "r1", "requested by user");
 * ```
 */
export async function cancel(
  deps: ReviewDeps,
  id: string,
  reason: string,
  waitMs = 2_000,
): Promise<CancelOutcome> {
  const result = await cancelReview(txnContext(deps), id, reason);
  if (result.kind === "not_found") return result;
  if (result.kind === "finished") {
    return { kind: "finished", review: toPublicReview(result.review) };
  }
  if (result.kind === "cancelled") deps.apply(result.transition.changes);
  let review = result.kind === "cancelled" ? result.transition.review : result.review;
  const deadline = Date.now() + waitMs;
  while (review.status === "running" && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    review = (await getReview(deps.kv, id)) ?? review;
  }
  if (review.status === "running") return { kind: "stopping", review: toPublicReview(review) };
  if (review.status === "cancelled") return { kind: "cancelled", review: toPublicReview(review) };
  return { kind: "finished", review: toPublicReview(review) };
}

/**
 * Lists reviews newest first.
 *
 * @example
 * ```ts
 * const page = await listPublicReviews(deps, { owner, limit: 20 });
 * ```
 */
export async function listPublicReviews(
  deps: ReviewDeps,
  options: {
    owner?: OwnerFilter;
    status?: ReviewStatus;
    repo?: string;
    limit: number;
    cursor?: string;
  },
) {
  const page = await listReviews(deps.kv, options);
  return { reviews: page.reviews.map((r) => toPublicReview(r)), cursor: page.cursor };
}

/**
 * An owner's slot usage.
 *
 * @example
 * ```ts
 * await ownerUsage(deps, { type: "org", id: "1" }); // { owner, limit: 4, active: 2, pending: 0 }
 * ```
 */
export async function ownerUsage(deps: ReviewDeps, owner: Pick<Owner, "type" | "id">) {
  const state = await getOwnerState(deps.kv, owner);
  return {
    owner: state?.owner ?? owner,
    limit: ownerLimit(state, deps.config.MAX_CONCURRENT_PER_OWNER),
    active: state?.active ?? 0,
    pending: state?.pending ?? 0,
  };
}

/**
 * Runs a `/review` command: `review` queues a fresh review of the pull request's current head (one
 * per command comment, however often GitHub delivers it); `cancel` stops the pull request's
 * unfinished reviews. Either way the comment gets an 👀 reaction, best-effort, in the background.
 *
 * @example
 * ```ts
 * const answer = await runCommand(deps, decision, deliveryId);
 * ```
 */
export async function runCommand(
  deps: ReviewDeps,
  command: Extract<EventDecision, { kind: "command" }>,
  deliveryId?: string,
): Promise<
  { command: "review"; review: ReviewRecord; created: boolean } | {
    command: "cancel";
    stopped: number;
  }
> {
  if (command.command === "cancel") {
    // A redelivered cancel must not stop the reviews started since.
    if (await commandDone(deps.kv, command.commentId)) return { command: "cancel", stopped: 0 };
    const { changes, stopped } = await cancelPullRequest(
      txnContext(deps),
      command.repo,
      command.pullNumber,
      `cancelled by /review cancel from ${command.by}`,
      undefined,
      "cancelled",
    );
    deps.apply(changes);
    await markCommandDone(deps.kv, command.commentId, deps.clock());
    react(deps, command);
    return { command: "cancel", stopped };
  }
  const record = reviewFromCommand(command, { deliveryId, now: deps.clock() });
  const { review, created } = await submitReview(deps, record, { supersede: "none" });
  if (created) react(deps, command);
  return { command: "review", review, created };
}

/** Answers a command comment with 👀 (never throws; a failure is logged). */
function react(deps: ReviewDeps, command: Extract<EventDecision, { kind: "command" }>) {
  deps.github.forInstallation(command.installationId)
    .addReaction(command.repo, command.commentId, "eyes")
    .catch((error) =>
      deps.log("warn", "could not react to the /review comment", {
        repo: command.repo,
        commentId: command.commentId,
        error: error instanceof Error ? error.message : String(error),
      })
    );
}

/**
 * Whether the repository asks for draft pull requests to be reviewed (`drafts: true` in the
 * configuration last read for it; unknown counts as no).
 *
 * @example
 * ```ts
 * if (await reviewsDrafts(deps, "octo/app")) submit();
 * ```
 */
export async function reviewsDrafts(deps: ReviewDeps, repo: string): Promise<boolean> {
  const latest = await readLatestRepoConfig<RepoConfig>(deps.kv, repo);
  return latest?.config.drafts === true;
}
