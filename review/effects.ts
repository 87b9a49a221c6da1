/**
 * The one place where what a commit changed is acted on: aborts of local attempts asked to stop,
 * the same-process fast path for dispatched reviews, a log line per status change, and status
 * callbacks. Every state-changing operation hands its {@link Changes} here (`deps.apply`); later
 * consumers (dashboard feed, metrics, check runs) are added here, not at call sites.
 *
 * @module
 */
import type { AbortRequest, Changes, Dispatch, ReviewChange } from "../kv/changes.ts";
import type { ReviewRecord } from "../kv/records.ts";
import type { Logger } from "./deps.ts";

/** Where the effects go. */
export interface EffectTargets {
  /** Aborts this process's attempts named by lease token (others notice through KV). */
  abort(requests: AbortRequest[]): void;
  /** Starts dispatched reviews in this process at once (the queue message stays the fallback). */
  kick(dispatched: Dispatch[]): void;
  /** Status callbacks, in commit order per review. */
  notify(review: ReviewRecord): void;
  /** Extra listeners of every change (tests, and later the live feed and metrics). */
  listeners?: Array<(changes: Changes) => void>;
  log: Logger;
}

/**
 * Builds the function that applies a commit's changes. It never throws: a failing effect is
 * logged and the others still run.
 *
 * @example
 * ```ts
 * const apply = createEffects({ abort, kick, notify, log });
 * apply(transition.changes);
 * ```
 */
export function createEffects(targets: EffectTargets): (changes: Changes) => void {
  const { log } = targets;
  const guarded = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      log("error", `effect failed: ${what}`, { error: String(error) });
    }
  };
  // Progress writes per running review, to log every PROGRESS_LOG_EVERY-th (bounded map).
  const progressSeen = new Map<string, number>();
  return (changes) => {
    if (changes.aborts.length) guarded("abort", () => targets.abort(changes.aborts));
    for (const { review, from, cause } of changes.reviews) {
      if (from === review.status) {
        if (cause === "progress") guarded("log", () => logProgress(log, progressSeen, review));
        else if (review.cancelRequested && review.status === "running") {
          guarded("log", () =>
            log("info", "review stop requested", {
              reviewId: review.id,
              owner: ownerKey(review),
              reason: review.cancelRequested!.reason,
              holder: review.lease?.instance,
            }));
        }
        continue;
      }
      if (review.status !== "running") progressSeen.delete(review.id);
      guarded("log", () => logStatus(log, review, from, cause));
      guarded("notify", () => targets.notify(review));
    }
    if (changes.dispatched.length) {
      guarded("kick", () => targets.kick(changes.dispatched.map((d) => d.dispatch)));
    }
    for (const listener of targets.listeners ?? []) guarded("listener", () => listener(changes));
  };
}

/** A running review's progress is logged at `info` once per this many progress writes. */
export const PROGRESS_LOG_EVERY = 10;
const MAX_PROGRESS_TRACKED = 10_000;

function ownerKey(review: ReviewRecord): string {
  return `${review.owner.type}:${review.owner.id}`;
}

/** One line per status change, with what an operator needs to follow a review. */
function logStatus(
  log: Logger,
  review: ReviewRecord,
  from: ReviewChange["from"],
  cause: ReviewChange["cause"],
) {
  const ended = review.finishedAt !== undefined &&
    ["completed", "failed", "cancelled"].includes(review.status);
  const message = from === null
    ? `review ${review.status === "pending" ? "pending" : "queued"}`
    : cause
    ? `review ${cause.replace("_", " ")}`
    : `review ${review.status === "running" ? "started" : review.status}`;
  log(review.status === "failed" ? "warn" : "info", message, {
    reviewId: review.id,
    status: review.status,
    from,
    owner: ownerKey(review),
    repo: review.repo,
    pullNumber: review.pullNumber,
    deliveryId: review.deliveryId,
    attempt: review.attempts,
    cause,
    queueWaitMs: review.status === "running" && review.startedAt !== undefined
      ? review.startedAt - review.createdAt
      : undefined,
    durationMs: ended ? review.finishedAt! - (review.startedAt ?? review.createdAt) : undefined,
    terminalReason: review.terminalReason,
    errorClass: cause === "retry" ? review.errorClass : undefined,
    errorMessage: review.status === "failed" || cause === "retry" ? review.errorMessage : undefined,
    findings: review.status === "completed" ? review.findingCount : undefined,
    retryOf: from === null ? review.retry?.of : undefined,
  });
}

function logProgress(log: Logger, seen: Map<string, number>, review: ReviewRecord) {
  const count = (seen.get(review.id) ?? 0) + 1;
  if (seen.size >= MAX_PROGRESS_TRACKED && !seen.has(review.id)) seen.clear();
  seen.set(review.id, count);
  log(count % PROGRESS_LOG_EVERY === 1 ? "info" : "debug", "review progress", {
    reviewId: review.id,
    owner: ownerKey(review),
    attempt: review.attempts,
    progress: review.progress?.message,
    findingsSoFar: review.findingsSoFar,
    writes: count,
  });
}
