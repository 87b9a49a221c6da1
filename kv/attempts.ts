/**
 * An attempt's life under its lease: start (queued → running with a fresh lease), fenced writes
 * while it runs (every write checks that this attempt still holds the lease), and the commits
 * that end it: finish, retry, hand back on shutdown.
 *
 * @module
 */
import {
  type ChangeCause,
  type Changes,
  emptyChanges,
  labelRequeue,
  type MessageRef,
} from "./changes.ts";
import { retryTransaction } from "./commit.ts";
import { keys } from "./keys.ts";
import type { OwnerTxn, TxnContext } from "./owner_txn.ts";
import { appendEvents, type PendingProgress, withProgress } from "./progress.ts";
import type {
  Finding,
  PullComment,
  ReviewEventLog,
  ReviewRecord,
  TerminalReason,
} from "./records.ts";
import { kvValueBytes, MAX_RECORD_BYTES, RecordTooLargeError } from "./size.ts";
import {
  endIn,
  holdsLease,
  type Outcome,
  stopOutcome,
  type Transition,
  transition,
} from "./transitions.ts";

/** `next` as the successor of `before`: `rev` bumped, size checked. */
function successor(next: ReviewRecord, before: ReviewRecord): ReviewRecord {
  const out = { ...next, rev: (before.rev ?? 0) + 1 };
  const bytes = kvValueBytes(out);
  if (bytes > MAX_RECORD_BYTES) throw new RecordTooLargeError(`review ${next.id}`, bytes);
  return out;
}

function runningOf(review: ReviewRecord, instance: string, leaseMs: number, now: number) {
  return {
    ...review,
    status: "running" as const,
    attempts: review.attempts + 1,
    startedAt: now,
    dispatchToken: undefined,
    dueAt: undefined,
    handedBackBy: undefined,
    lease: { token: crypto.randomUUID(), instance, expiresAt: now + leaseMs },
  };
}

/**
 * A started attempt, with the versionstamp of the commit that started it: everything committed
 * before it sorts lower in every instance's view of KV, whatever their clocks say.
 */
export interface StartedAttempt extends Transition {
  versionstamp: string;
}

/**
 * Starts an attempt for a queue message: only a `queued` review whose dispatch token matches
 * moves to `running`, with a fresh lease. Anything else (a redelivery, a stale or early message,
 * a cancelled review) returns `null`, and the message is acknowledged as a no-op. A record that
 * cannot be written as running fails the review and frees its slot.
 *
 * With `ref` (a same-process start of a dispatch whose transport can remove its message), the
 * message is removed in the start commit: from then on the lease, not the message, is what
 * brings the review back if this process dies. A listener that took the message already holds
 * a copy the transport moved; handling it is the usual no-op.
 *
 * @example
 * ```ts
 * const started = await startAttempt(ctx, msg, { instance: "i1", leaseMs: 30_000 });
 * await startAttempt(ctx, { ...dispatch }, { instance: "i1", leaseMs: 30_000 }); // drops ref
 * ```
 */
export async function startAttempt(
  ctx: TxnContext,
  message: { reviewId: string; token: string; ref?: MessageRef },
  options: { instance: string; leaseMs: number },
): Promise<StartedAttempt | null> {
  const { kv, now } = ctx;
  const due = (r: ReviewRecord | null): r is ReviewRecord =>
    r?.status === "queued" && r.dispatchToken === message.token;
  let tooLarge = false;
  const started = await retryTransaction(`startAttempt ${message.reviewId}`, async () => {
    const entry = await kv.get<ReviewRecord>(keys.review(message.reviewId));
    if (!due(entry.value)) return null;
    let running: ReviewRecord;
    try {
      running = successor(
        runningOf(entry.value, options.instance, options.leaseMs, now),
        entry.value,
      );
    } catch (error) {
      if (!(error instanceof RecordTooLargeError)) throw error;
      tooLarge = true;
      return null;
    }
    const op = kv.atomic().check(entry).set(entry.key, running);
    if (message.ref) ctx.drop(op, message.ref);
    const result = await op.commit();
    if (!result.ok) return undefined;
    const changes: Changes = emptyChanges();
    changes.reviews.push({ review: running, from: "queued" });
    return { review: running, changes, versionstamp: result.versionstamp };
  });
  if (!tooLarge) return started;
  // The transition ends the review as failed when the running record does not fit.
  await transition(
    ctx,
    message.reviewId,
    "startAttempt",
    (review, txn) =>
      due(review)
        ? txn.putReview(runningOf(review, options.instance, options.leaseMs, now), review)
        : null,
  );
  return null;
}

/**
 * Watches one review: the stream yields the record now and after every change (this process's
 * writes locally; every instance's on Deno Deploy).
 *
 * @example
 * ```ts
 * for await (const review of watchReview(kv, id)) console.log(review?.status);
 * ```
 */
export function watchReview(kv: Deno.Kv, reviewId: string): ReadableStream<ReviewRecord | null> {
  return kv.watch<[ReviewRecord]>([keys.review(reviewId)]).pipeThrough(
    new TransformStream({ transform: ([entry], out) => out.enqueue(entry.value) }),
  );
}

/** What else a running review's update carries in its commit. */
export interface UpdateExtras {
  /** Progress not written yet: the record's fields under the change, the events to the log. */
  progress?: PendingProgress;
  /** Adds more to the commit, given the record it writes (run again on every retry). */
  also?: (op: Deno.AtomicOperation, next: ReviewRecord) => Promise<void>;
}

/**
 * Changes a running review if this attempt still holds its lease; `null` means the lease is lost
 * (taken over after expiry, or the review ended) and the attempt must stop. With `progress`, the
 * progress not written yet goes in the same commit (the record's progress fields under `change`,
 * when they fit; the events appended to the event log), instead of a progress write of its own;
 * `also` adds what else belongs in the commit (the publish claim, with the result).
 *
 * @example
 * ```ts
 * await updateRunning(kv, id, leaseToken, (r) => ({ ...r, sessionId: "s1" }));
 * await updateRunning(kv, id, leaseToken, (r) => ({ ...r, resultStored: true }), { progress });
 * ```
 */
export function updateRunning(
  kv: Deno.Kv,
  reviewId: string,
  leaseToken: string,
  change: (review: ReviewRecord) => ReviewRecord,
  { progress, also }: UpdateExtras = {},
): Promise<ReviewRecord | null> {
  const events = progress?.events ?? [];
  return retryTransaction(`updateRunning ${reviewId}`, async () => {
    const [entry, log] = events.length
      ? await kv.getMany<[ReviewRecord, ReviewEventLog]>([
        keys.review(reviewId),
        keys.reviewEvents(reviewId),
      ])
      : [await kv.get<ReviewRecord>(keys.review(reviewId)), undefined];
    if (!holdsLease(entry.value, leaseToken)) return null;
    const before = entry.value!;
    const next = changedWithProgress(before, change, progress);
    const op = kv.atomic().check(entry).set(entry.key, next);
    if (log) {
      op.check(log).set(log.key, { events: appendEvents(log.value?.events ?? [], events) });
    }
    await also?.(op, next);
    return (await op.commit()).ok ? next : undefined;
  });
}

/** `change` over the record with its pending progress; without it when that would not fit. */
function changedWithProgress(
  before: ReviewRecord,
  change: (review: ReviewRecord) => ReviewRecord,
  progress: PendingProgress | undefined,
): ReviewRecord {
  const patched = withProgress(before, progress?.patch);
  try {
    return successor(change(patched), before);
  } catch (error) {
    if (!(error instanceof RecordTooLargeError) || patched === before) throw error;
    return successor(change(before), before);
  }
}

/**
 * Extends the attempt's lease to `expiresAt`; `null` when it is no longer held.
 *
 * @example
 * ```ts
 * const alive = await renewLease(kv, id, leaseToken, Date.now() + 30_000);
 * ```
 */
export function renewLease(
  kv: Deno.Kv,
  reviewId: string,
  leaseToken: string,
  expiresAt: number,
): Promise<ReviewRecord | null> {
  return updateRunning(kv, reviewId, leaseToken, (r) => ({
    ...r,
    lease: { ...r.lease!, expiresAt },
  }));
}

const FINDINGS_PER_COMMIT = 100;
/** Deno KV caps an atomic operation's total size; stay well below it. */
const BYTES_PER_COMMIT = 400_000;

/**
 * Stores findings under `["findings", reviewId, i]` in size-bounded batches; every batch's commit
 * checks that this attempt still holds the lease. `false` when the lease was lost (nothing more
 * is written).
 *
 * @example
 * ```ts
 * if (!(await storeFindings(kv, id, leaseToken, findings))) throw new Error("lease lost");
 * ```
 */
export async function storeFindings(
  kv: Deno.Kv,
  reviewId: string,
  leaseToken: string,
  findings: Finding[],
): Promise<boolean> {
  const batches: Array<Array<[number, Finding]>> = [[]];
  let bytes = 0;
  for (const [i, finding] of findings.entries()) {
    const size = kvValueBytes(finding);
    const batch = batches.at(-1)!;
    if (batch.length >= FINDINGS_PER_COMMIT || (batch.length && bytes + size > BYTES_PER_COMMIT)) {
      batches.push([]);
      bytes = 0;
    }
    batches.at(-1)!.push([i, finding]);
    bytes += size;
  }
  for (const batch of batches) {
    if (batch.length === 0) continue;
    const held = await retryTransaction(`storeFindings ${reviewId}`, async () => {
      const entry = await kv.get<ReviewRecord>(keys.review(reviewId));
      if (!holdsLease(entry.value, leaseToken)) return false;
      const op = kv.atomic().check(entry);
      for (const [i, finding] of batch) op.set(keys.finding(reviewId, i), finding);
      return (await op.commit()).ok ? true : undefined;
    });
    if (!held) return false;
  }
  return true;
}

/** The comment a finishing attempt posted, saved with the completion. */
export interface Published {
  commentId: number;
  commentUrl: string;
}

/**
 * Ends a review held by this attempt's lease, frees its slot and, in the same commit, claims and
 * dispatches the owner's next pending review. With `published`, the pull request's comment
 * pointer is saved in the same commit (and the publish claim released). `outcome` may be computed
 * from the record as it is at the commit. `null` when the lease was lost.
 *
 * @example
 * ```ts
 * await finishAttempt(ctx, id, leaseToken, { status: "completed", terminalReason: "completed" });
 * ```
 */
export function finishAttempt(
  ctx: TxnContext,
  reviewId: string,
  leaseToken: string,
  outcome: Outcome | ((review: ReviewRecord) => Outcome),
  published?: Published,
): Promise<Transition | null> {
  return transition(ctx, reviewId, "finishAttempt", async (review, txn) => {
    if (!holdsLease(review, leaseToken)) return null;
    if (published) {
      const key = keys.prComment(review.repo, review.pullNumber);
      const pointer = await ctx.kv.get<PullComment>(key);
      txn.op.check(pointer);
      // A claim taken over after ours expired belongs to someone else: leave the pointer to it.
      const claim = pointer.value?.claim;
      if (!claim || claim.reviewId === review.id) {
        txn.op.set(key, { ...published, reviewId: review.id } satisfies PullComment);
      }
    }
    return endIn(txn, review, typeof outcome === "function" ? outcome(review) : outcome, ctx.now);
  });
}

/**
 * The shared shape of retry, hand-back and deferral: only the attempt holding the lease sends its
 * review back, and a review whose stop was requested ends instead.
 */
async function sendBack(
  ctx: TxnContext,
  reviewId: string,
  leaseToken: string,
  name: string,
  plan: (review: ReviewRecord, txn: OwnerTxn) => ReviewRecord,
  cause: ChangeCause,
): Promise<Transition | null> {
  const t = await transition(ctx, reviewId, name, (review, txn) => {
    if (!holdsLease(review, leaseToken)) return null;
    if (review.cancelRequested) {
      return endIn(txn, review, stopOutcome(review.cancelRequested), ctx.now);
    }
    return plan(review, txn);
  });
  labelRequeue(t?.changes, reviewId, cause);
  return t;
}

/**
 * Sends the review back through the queue after `delayMs`; it keeps its slot while it waits. A
 * review whose stop was requested ends instead.
 *
 * @example
 * ```ts
 * await scheduleRetry(ctx, id, leaseToken, "agent answered 503", 5_000);
 * ```
 */
export function scheduleRetry(
  ctx: TxnContext,
  reviewId: string,
  leaseToken: string,
  errorMessage: string,
  delayMs: number,
  errorClass?: TerminalReason,
): Promise<Transition | null> {
  return sendBack(
    ctx,
    reviewId,
    leaseToken,
    "scheduleRetry",
    (review, txn) =>
      txn.dispatch(
        { ...review, errorMessage, ...(errorClass ? { errorClass } : {}) },
        review,
        delayMs,
      ),
    "retry",
  );
}

/**
 * Hands a running attempt back on shutdown: the review is dispatched again at once and the
 * attempt is not counted; after `maxHandBacks` the review fails as `interrupted`. A review whose
 * stop was requested ends instead.
 *
 * @example
 * ```ts
 * await handBack(ctx, id, leaseToken, 10);
 * ```
 */
export function handBack(
  ctx: TxnContext,
  reviewId: string,
  leaseToken: string,
  maxHandBacks: number,
): Promise<Transition | null> {
  return sendBack(ctx, reviewId, leaseToken, "handBack", (review, txn) => {
    const handed = {
      ...review,
      attempts: review.attempts - 1,
      handBacks: review.handBacks + 1,
      handedBackBy: review.lease?.instance,
    };
    if (handed.handBacks > maxHandBacks) {
      return endIn(txn, handed, {
        status: "failed",
        terminalReason: "interrupted",
        errorMessage: `interrupted by ${handed.handBacks} instance shutdowns`,
      }, ctx.now);
    }
    return txn.dispatch(handed, review);
  }, "hand_back");
}

/**
 * Sends the review back through the queue after `delayMs` because an agent limit made it wait
 * (the shared rate limits, or the agent's own 429): it keeps its slot, and the attempt is not
 * counted. A review whose stop was requested ends instead.
 *
 * @example
 * ```ts
 * await deferAttempt(ctx, id, leaseToken, 12_000, "waiting for AGENT_RATE_PER_MINUTE");
 * await deferAttempt(ctx, id, leaseToken, 7_000, "agent rate limit", "agent_429");
 * ```
 */
export function deferAttempt(
  ctx: TxnContext,
  reviewId: string,
  leaseToken: string,
  delayMs: number,
  why: string,
  cause: "limit" | "agent_429" = "limit",
): Promise<Transition | null> {
  return sendBack(ctx, reviewId, leaseToken, "deferAttempt", (review, txn) => {
    const deferred: ReviewRecord = {
      ...review,
      attempts: review.attempts - 1,
      deferrals: (review.deferrals ?? 0) + 1,
      ...(cause === "agent_429" ? { agentRateLimited: (review.agentRateLimited ?? 0) + 1 } : {}),
      progress: { message: why, at: ctx.now },
    };
    return txn.dispatch(deferred, review, delayMs);
  }, "deferral");
}
