/**
 * The one place where what a commit changed is acted on: aborts of local attempts asked to stop,
 * the same-process fast path for dispatched reviews, a log line per status change, and status
 * callbacks. Every state-changing operation hands its {@link Changes} here (`deps.apply`); later
 * consumers (dashboard feed, metrics, check runs) are added here, not at call sites.
 *
 * @module
 */
import type { AbortRequest, Changes, Dispatch } from "../kv/changes.ts";
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
  return (changes) => {
    if (changes.aborts.length) guarded("abort", () => targets.abort(changes.aborts));
    for (const { review, from, cause } of changes.reviews) {
      if (from === review.status) {
        if (review.cancelRequested && review.status === "running" && cause !== "progress") {
          guarded("log", () =>
            log("info", "review stop requested", {
              reviewId: review.id,
              reason: review.cancelRequested!.reason,
              holder: review.lease?.instance,
            }));
        }
        continue;
      }
      guarded(
        "log",
        () =>
          log(review.status === "failed" ? "warn" : "info", `review ${review.status}`, {
            reviewId: review.id,
            repo: review.repo,
            pullNumber: review.pullNumber,
            from,
            attempts: review.attempts,
            terminalReason: review.terminalReason,
            errorMessage: review.errorMessage,
            findings: review.status === "completed" ? review.findingCount : undefined,
          }),
      );
      guarded("notify", () => targets.notify(review));
    }
    if (changes.dispatched.length) {
      guarded("kick", () => targets.kick(changes.dispatched.map((d) => d.dispatch)));
    }
    for (const listener of targets.listeners ?? []) guarded("listener", () => listener(changes));
  };
}
