/**
 * The "AI review" check run of a review's head, best-effort: it never fails or holds up a review.
 * `in_progress` when the agent session opens, its summary following the agent's progress (at most
 * every few seconds), then `completed`, with annotations in batches of 50. A token that may not
 * write check runs (403, a personal token) gets a commit status instead. The run is found again by
 * its `external_id` (the review id), so a retry, another instance or a crash never makes a second.
 *
 * @module
 */
import type { Finding, ReviewRecord, Severity } from "../kv/records.ts";
import {
  annotationBatches,
  CHECK_RUN_NAME,
  checkAnnotations,
  checkConclusion,
  checkOutput,
  statusDescription,
} from "./check_output.ts";
import { ReviewError } from "./errors.ts";
import type { CheckRunInput, GitHubClient } from "./github.ts";
import { type Anchor, anchorDiff } from "./inline_publish.ts";

/** Least time between two progress updates of one check run. */
export const CHECK_PROGRESS_MS = 5_000;

/** How a review ended, for its check run. */
export interface CheckResult {
  findings: Finding[];
  summary?: string;
  /** Set when the review failed: why. */
  failedBecause?: string;
  /** Set when the review was stopped (cancelled, superseded, closed, turned off): why. */
  stoppedBecause?: string;
  leftOut?: string[];
  configProblems?: string[];
  anchors?: Anchor[];
  /** Findings at or above this make the conclusion `neutral`. */
  threshold: Severity;
}

/**
 * One review's check run (or commit status).
 *
 * @example
 * ```ts
 * const check = checkReporter(github, review, { log });
 * check.start();
 * check.progress("reading src/app.ts");
 * check.finish({ findings, threshold: "info" });
 * await check.idle();
 * ```
 */
export interface CheckReporter {
  /** Marks the head's check `in_progress` (creating the run, or finding ours). */
  start(): void;
  /** Shows the agent's latest progress line (throttled). */
  progress(message: string): void;
  /** Completes the check with the review's outcome. */
  finish(result: CheckResult): void;
  /** Resolves when every update asked for so far has been sent (or has failed). */
  idle(): Promise<void>;
}

type Mode = { kind: "unknown" } | { kind: "check"; id: number } | { kind: "status" } | {
  kind: "off";
};

/**
 * Creates the reporter of `review`'s head.
 *
 * @example
 * ```ts
 * const check = checkReporter(github, review, { log, clock: Date.now });
 * ```
 */
export function checkReporter(
  github: GitHubClient,
  review: Pick<ReviewRecord, "id" | "repo" | "headSha">,
  options: {
    log: (message: string, context: Record<string, unknown>) => void;
    clock?: () => number;
    progressMs?: number;
    detailsUrl?: string;
    /**
     * No earlier session of this review can have made its run (this is the review's first): the
     * first create need not look for one. After a create, whatever its answer, it looks again.
     */
    fresh?: boolean;
  },
): CheckReporter {
  const clock = options.clock ?? Date.now;
  const progressMs = options.progressMs ?? CHECK_PROGRESS_MS;
  const { repo, id: reviewId } = review;
  const headSha = review.headSha ?? "";
  let mode: Mode = { kind: "unknown" };
  let chain: Promise<void> = Promise.resolve();
  let lastProgress = -Infinity;
  let pendingProgress: string | undefined;
  let finished = false;
  let mayExist = !options.fresh;

  let queued = 0;
  const enqueue = (step: () => Promise<void>) => {
    queued++;
    chain = chain.then(step).finally(() => queued--).catch((error) => {
      options.log("check run update failed", {
        reviewId,
        error: error instanceof Error ? error.message : String(error),
      });
    });
  };

  /** Whether GitHub refused check runs to this token (and not for a rate limit). */
  const refused = (error: unknown) =>
    error instanceof ReviewError && !error.retryable &&
    (error.cause as { status?: number } | undefined)?.status === 403;

  /** Finds our run, else creates it with `fields`; falls back to a status on a 403. */
  async function ensure(fields: CheckRunInput): Promise<boolean> {
    if (mode.kind !== "unknown") return false;
    if (!headSha) {
      mode = { kind: "off" };
      return false;
    }
    try {
      const found = mayExist
        ? await github.findCheckRun(repo, headSha, CHECK_RUN_NAME, reviewId)
        : null;
      if (found) {
        mode = { kind: "check", id: found.id };
        return false;
      }
      // A create whose answer is lost may still have made the run.
      mayExist = true;
      const created = await github.createCheckRun(repo, {
        ...fields,
        headSha,
        name: CHECK_RUN_NAME,
        externalId: reviewId,
        detailsUrl: options.detailsUrl,
      });
      mode = { kind: "check", id: created.id };
      return true;
    } catch (error) {
      if (refused(error)) {
        mode = { kind: "status" };
        return false;
      }
      throw error;
    }
  }

  const status = (state: "pending" | "success" | "failure" | "error", description: string) =>
    github.createStatus(repo, headSha, {
      state,
      description,
      context: CHECK_RUN_NAME,
      targetUrl: options.detailsUrl,
    });

  return {
    start() {
      enqueue(async () => {
        const output = { title: "Reviewing", summary: "The review agent is reading the change." };
        await ensure({ status: "in_progress", output });
        if (mode.kind === "status") await status("pending", "Review in progress");
      });
    },
    progress(message) {
      if (finished) return;
      pendingProgress = message;
      // A slow GitHub gets no pile of updates: the next one goes once the last has been answered.
      if (clock() - lastProgress < progressMs || queued > 0) return;
      lastProgress = clock();
      enqueue(async () => {
        const line = pendingProgress;
        pendingProgress = undefined;
        if (finished || line === undefined || mode.kind !== "check") return;
        await github.updateCheckRun(repo, mode.id, {
          status: "in_progress",
          output: { title: "Reviewing", summary: line.slice(0, 1_000) },
        });
      });
    },
    finish(result) {
      finished = true;
      enqueue(async () => {
        const output = result.stoppedBecause
          ? { title: "Review stopped", summary: result.stoppedBecause.slice(0, 1_000) }
          : checkOutput(result);
        const conclusion = result.stoppedBecause ? "cancelled" as const : checkConclusion({
          findings: result.findings,
          threshold: result.threshold,
          failed: result.failedBecause !== undefined,
        });
        const annotations = result.stoppedBecause || !result.anchors?.length
          ? []
          : checkAnnotations(result.findings, anchorDiff(result.anchors));
        const batches = annotationBatches(annotations);
        const first = { ...output, annotations: batches[0] ?? [] };
        const created = await ensure({ status: "completed", conclusion, output: first });
        if (mode.kind === "status") {
          // A status has no "neutral": findings are reported as a success with their counts.
          await status(
            result.failedBecause !== undefined
              ? "failure"
              : result.stoppedBecause
              ? "error"
              : "success",
            result.stoppedBecause
              ? `Stopped: ${result.stoppedBecause}`.slice(0, 140)
              : statusDescription(result),
          );
          return;
        }
        if (mode.kind !== "check") return;
        const id = mode.id;
        if (!created) {
          await github.updateCheckRun(repo, id, { status: "completed", conclusion, output: first });
        }
        // GitHub appends the annotations of each update.
        for (const batch of batches.slice(1)) {
          await github.updateCheckRun(repo, id, { output: { ...output, annotations: batch } });
        }
      });
    },
    idle: async () => {
      let seen: Promise<void>;
      do {
        seen = chain;
        await seen;
      } while (seen !== chain);
    },
  };
}
