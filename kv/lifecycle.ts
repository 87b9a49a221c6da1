/**
 * A review's life after it was stored: starting an attempt under a lease, renewing it, retrying,
 * handing back on shutdown, finishing (which frees the slot and claims the next pending review),
 * cancelling, and recovering attempts whose lease expired. Each change is one atomic commit.
 *
 * @module
 */
import { retryTransaction, withLockRetry } from "./commit.ts";
import { keys } from "./keys.ts";
import { type Dispatch, OwnerTxn, readOwner, type TxnContext } from "./owner_txn.ts";
import {
  type Finding,
  type ReviewRecord,
  TERMINAL_STATUSES,
  type TerminalReason,
} from "./records.ts";

/** How a review ends. */
export interface Outcome {
  status: "completed" | "failed" | "cancelled";
  terminalReason: TerminalReason;
  errorMessage?: string;
  patch?: Partial<ReviewRecord>;
}

/** A finished review and the dispatches its commit sent (the owner's next reviews). */
export interface Transition {
  review: ReviewRecord;
  dispatched: Dispatch[];
}

/** Whether a status is final. */
export function isTerminal(review: ReviewRecord): boolean {
  return TERMINAL_STATUSES.includes(review.status);
}

function holdsLease(review: ReviewRecord, leaseToken: string): boolean {
  return review.status === "running" && review.lease?.token === leaseToken;
}

/**
 * Starts an attempt for a queue message: only a `queued` review whose dispatch token matches
 * moves to `running`, with a fresh lease. Anything else (a redelivery, a stale or early message,
 * a cancelled review) returns `null`, and the message is acknowledged as a no-op.
 *
 * @example
 * ```ts
 * const review = await startAttempt(kv, msg, { instance: "i1", leaseMs: 30_000, now: Date.now() });
 * ```
 */
export function startAttempt(
  kv: Deno.Kv,
  message: { reviewId: string; token: string },
  options: { instance: string; leaseMs: number; now: number },
): Promise<ReviewRecord | null> {
  return retryTransaction(`startAttempt ${message.reviewId}`, async () => {
    const entry = await kv.get<ReviewRecord>(keys.review(message.reviewId));
    const review = entry.value;
    if (!review || review.status !== "queued" || review.dispatchToken !== message.token) {
      return null;
    }
    const running: ReviewRecord = {
      ...review,
      status: "running",
      attempts: review.attempts + 1,
      startedAt: options.now,
      dispatchToken: undefined,
      dueAt: undefined,
      handedBackBy: undefined,
      lease: {
        token: crypto.randomUUID(),
        instance: options.instance,
        expiresAt: options.now + options.leaseMs,
      },
    };
    const result = await kv.atomic().check(entry).set(entry.key, running).commit();
    return result.ok ? running : undefined;
  });
}

/**
 * Changes a running review if this attempt still holds its lease; `null` means the lease is lost
 * (cancelled, superseded, or taken over after expiry) and the attempt must stop.
 *
 * @example
 * ```ts
 * await updateRunning(kv, id, leaseToken, (r) => ({ ...r, sessionId: "s1" }));
 * ```
 */
export function updateRunning(
  kv: Deno.Kv,
  reviewId: string,
  leaseToken: string,
  change: (review: ReviewRecord) => ReviewRecord,
): Promise<ReviewRecord | null> {
  return retryTransaction(`updateRunning ${reviewId}`, async () => {
    const entry = await kv.get<ReviewRecord>(keys.review(reviewId));
    if (!entry.value || !holdsLease(entry.value, leaseToken)) return null;
    const next = change(entry.value);
    const result = await kv.atomic().check(entry).set(entry.key, next).commit();
    return result.ok ? next : undefined;
  });
}

/**
 * Extends the attempt's lease.
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
 * Stores findings under `["findings", reviewId, i]`, in several commits when there are many, so
 * no record nears the 64 KiB value limit. Readers read `findingCount` entries.
 *
 * @example
 * ```ts
 * await storeFindings(kv, id, findings);
 * ```
 */
export async function storeFindings(kv: Deno.Kv, reviewId: string, findings: Finding[]) {
  const encoder = new TextEncoder();
  let op = kv.atomic();
  let count = 0;
  let bytes = 0;
  const flush = async () => {
    if (count === 0) return;
    const batch = op;
    await withLockRetry(() => batch.commit());
    op = kv.atomic();
    count = 0;
    bytes = 0;
  };
  for (const [i, finding] of findings.entries()) {
    const size = encoder.encode(JSON.stringify(finding)).length;
    if (count >= FINDINGS_PER_COMMIT || bytes + size > BYTES_PER_COMMIT) await flush();
    op.set(keys.finding(reviewId, i), finding);
    count++;
    bytes += size;
  }
  await flush();
}

async function transition(
  ctx: TxnContext,
  reviewId: string,
  what: string,
  plan: (review: ReviewRecord, txn: OwnerTxn) => ReviewRecord | null,
): Promise<Transition | null> {
  return await retryTransaction(`${what} ${reviewId}`, async () => {
    const entry = await ctx.kv.get<ReviewRecord>(keys.review(reviewId));
    if (!entry.value) return null;
    const snapshot = await readOwner(ctx.kv, entry.value.owner, ctx.limit + 1);
    const txn = new OwnerTxn(ctx, entry.value.owner, snapshot);
    txn.op.check(entry);
    const review = plan(entry.value, txn);
    if (!review) return null;
    if (!(await txn.commit())) return undefined;
    return { review, dispatched: txn.dispatched };
  });
}

function endIn(txn: OwnerTxn, review: ReviewRecord, outcome: Outcome, now: number) {
  if (review.status === "pending") txn.removePending(review);
  else txn.freeSlot();
  const ended: ReviewRecord = {
    ...review,
    ...outcome.patch,
    status: outcome.status,
    terminalReason: outcome.terminalReason,
    errorMessage: outcome.errorMessage ?? outcome.patch?.errorMessage ?? review.errorMessage,
    finishedAt: now,
    lease: undefined,
    dispatchToken: undefined,
    dueAt: undefined,
  };
  if (outcome.status === "completed") ended.errorMessage = undefined;
  txn.putReview(ended);
  return ended;
}

/**
 * Ends a review held by this attempt's lease, frees its slot and, in the same commit, claims and
 * dispatches the owner's next pending review. `null` when the lease was lost.
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
  outcome: Outcome,
): Promise<Transition | null> {
  return transition(ctx, reviewId, "finishAttempt", (review, txn) => {
    if (!holdsLease(review, leaseToken)) return null;
    return endIn(txn, review, outcome, ctx.now);
  });
}

/** Result of {@link cancelReview}. */
export type CancelResult =
  | { kind: "cancelled"; transition: Transition }
  | { kind: "finished"; review: ReviewRecord }
  | { kind: "not_found" };

/**
 * Cancels a review that has not finished: a pending one leaves the line, a queued or running one
 * frees its slot (its attempt notices the lost lease and aborts its agent stream).
 *
 * @example
 * ```ts
 * const r = await cancelReview(ctx, id, "no longer needed");
 * ```
 */
export async function cancelReview(
  ctx: TxnContext,
  reviewId: string,
  reason: string,
): Promise<CancelResult> {
  let finished: ReviewRecord | undefined;
  const t = await transition(ctx, reviewId, "cancelReview", (review, txn) => {
    if (isTerminal(review)) {
      finished = review;
      return null;
    }
    return endIn(txn, review, {
      status: "cancelled",
      terminalReason: "cancelled",
      errorMessage: reason,
    }, ctx.now);
  });
  if (t) return { kind: "cancelled", transition: t };
  return finished ? { kind: "finished", review: finished } : { kind: "not_found" };
}

/**
 * Sends the review back through the queue after `delayMs`; it keeps its slot while it waits.
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
): Promise<Transition | null> {
  return transition(ctx, reviewId, "scheduleRetry", (review, txn) => {
    if (!holdsLease(review, leaseToken)) return null;
    return txn.dispatch({ ...review, errorMessage }, delayMs);
  });
}

/**
 * Hands a running attempt back on shutdown: the review is dispatched again at once and the
 * attempt is not counted; after `maxHandBacks` the review fails as `interrupted`.
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
  return transition(ctx, reviewId, "handBack", (review, txn) => {
    if (!holdsLease(review, leaseToken)) return null;
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
    return txn.dispatch(handed);
  });
}

/**
 * Recovers in-flight reviews nobody is working on: a running review whose lease expired (its
 * process died; this counts as an attempt) is dispatched again or failed after `maxAttempts`; a
 * queued review whose message is long overdue is dispatched again. Reads only in-flight reviews.
 *
 * @example
 * ```ts
 * const dispatched = await recoverStalled(ctx, { maxAttempts: 3, overdueMs: 60_000, instance: "i1" });
 * ```
 */
export async function recoverStalled(
  ctx: TxnContext,
  options: { maxAttempts: number; overdueMs: number; instance: string },
): Promise<Dispatch[]> {
  const inflight = await Array.fromAsync(ctx.kv.list({ prefix: keys.inflightAll() }));
  const dispatched: Dispatch[] = [];
  for (const { key } of inflight) {
    const reviewId = String(key[1]);
    const t = await transition(ctx, reviewId, "recoverStalled", (review, txn) => {
      if (review.status === "running" && review.lease && review.lease.expiresAt < ctx.now) {
        if (review.attempts >= options.maxAttempts) {
          return endIn(txn, review, {
            status: "failed",
            terminalReason: "interrupted",
            errorMessage: `attempt lease expired ${review.attempts} times ` +
              `(last holder ${review.lease.instance})`,
          }, ctx.now);
        }
        return txn.dispatch(review);
      }
      const due = review.dueAt ?? review.queuedAt ?? ctx.now;
      if (review.status === "queued" && due + options.overdueMs < ctx.now) {
        return txn.dispatch(review);
      }
      // A hand-back's own message may reach no live listener soon (KV queues do not cross
      // processes promptly): another instance takes it now; the old message turns stale.
      if (
        review.status === "queued" && review.handedBackBy &&
        review.handedBackBy !== options.instance
      ) {
        return txn.dispatch({ ...review, handedBackBy: undefined });
      }
      return null;
    });
    if (t) dispatched.push(...t.dispatched);
  }
  return dispatched;
}

/**
 * Claims pending reviews for every owner with free slots (after a raised limit, or a commit that
 * could not claim because its read of the line was short).
 *
 * @example
 * ```ts
 * const dispatched = await fillAllOwners(ctx);
 * ```
 */
export async function fillAllOwners(ctx: TxnContext): Promise<Dispatch[]> {
  const owners = await Array.fromAsync(
    ctx.kv.list<{ owner: ReviewRecord["owner"]; active: number; pending: number }>({
      prefix: keys.owners(),
    }),
  );
  const dispatched: Dispatch[] = [];
  for (const { value } of owners) {
    if (value.pending === 0 || value.active >= ctx.limit) continue;
    const sent = await retryTransaction(`fillOwner ${value.owner.id}`, async () => {
      const snapshot = await readOwner(ctx.kv, value.owner, ctx.limit);
      const txn = new OwnerTxn(ctx, value.owner, snapshot);
      return (await txn.commit()) ? txn.dispatched : undefined;
    });
    dispatched.push(...sent);
  }
  return dispatched;
}
