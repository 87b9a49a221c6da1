/**
 * The head's check run around one attempt: opened when the agent session opens (in the pipeline),
 * completed here once the review has ended, whoever ended it (this attempt, a callback, a cancel).
 *
 * @module
 */
import { getFindings, getReview } from "../kv/queries.ts";
import { TERMINAL_STATUSES } from "../kv/records.ts";
import { type CheckReporter, checkReporter } from "./check_publish.ts";
import type { ReviewDeps } from "./deps.ts";
import type { ReviewRecord } from "../kv/records.ts";

/** Longest wait for the check run's last update after the review has ended. */
const CHECK_FINISH_WAIT_MS = 10_000;

/**
 * What one attempt opened that outlives its steps: the head's check run.
 *
 * @example
 * ```ts
 * const attempt: AttemptState = {};
 * ```
 */
export interface AttemptState {
  check?: CheckReporter;
}

/**
 * Completes the head's check run once the review has ended (whoever ended it), best-effort and
 * bounded: the review's own commit is already made.
 *
 * @example
 * ```ts
 * await completeCheck(deps, started, attempt);
 * ```
 */
export async function completeCheck(
  deps: ReviewDeps,
  started: ReviewRecord,
  attempt: AttemptState,
) {
  try {
    const review = await getReview(deps.kv, started.id);
    if (!review || !TERMINAL_STATUSES.includes(review.status)) return;
    if (review.terminalReason === "disabled_by_config") return;
    // A review that published its result in an earlier attempt finds its check run by its id.
    const check = attempt.check ??
      (review.resultStored && review.headSha
        ? checkReporter(deps.github.forInstallation(review.installationId), review, {
          log: (message, context) => deps.log("warn", message, context),
          clock: deps.clock,
          detailsUrl: detailsUrl(deps, review.id),
        })
        : undefined);
    if (!check) return;
    const scope = review.scope ?? {};
    const threshold = scope.failOn ?? scope.minSeverity ?? deps.config.MIN_SEVERITY;
    if (review.status === "completed") {
      check.finish({
        findings: await getFindings(deps.kv, review.id, review.findingCount),
        summary: review.summary,
        leftOut: scope.leftOut,
        configProblems: scope.configProblems,
        anchors: scope.anchors,
        threshold,
      });
    } else if (review.status === "failed") {
      check.finish({ findings: [], failedBecause: review.errorMessage ?? "", threshold });
    } else {
      check.finish({
        findings: [],
        stoppedBecause: review.errorMessage ?? review.terminalReason ?? "cancelled",
        threshold,
      });
    }
    await Promise.race([check.idle(), new Promise((r) => setTimeout(r, CHECK_FINISH_WAIT_MS))]);
  } catch (error) {
    deps.log("warn", "could not complete the check run", {
      reviewId: started.id,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/**
 * Where a check run's "Details" link points (the review's API page), if the service knows.
 *
 * @example
 * ```ts
 * detailsUrl(deps, "r1"); // "https://reviews.example/reviews/r1"
 * ```
 */
export function detailsUrl(deps: ReviewDeps, reviewId: string): string | undefined {
  const base = deps.config.PUBLIC_URL;
  return base ? `${base.replace(/\/+$/, "")}/reviews/${encodeURIComponent(reviewId)}` : undefined;
}
