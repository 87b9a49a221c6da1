/**
 * The inline review of a head: posted once whatever happens (our hidden marker names the head, and
 * an existing review of that head is adopted instead of posting again), and earlier heads' reviews
 * minimized as outdated. The diff the agent saw is not kept; the hunks that hold a finding are
 * ({@link findingAnchors}), enough to place every comment again at publishing time.
 *
 * @module
 */
import type { Finding, Severity } from "../kv/records.ts";
import { ReviewError } from "./errors.ts";
import type { GitHubClient, PostedReview } from "./github.ts";
import {
  buildInlineReview,
  commentableLines,
  INLINE_REVIEW_MARKER,
  parseInlineReviewMarker,
} from "./inline_review.ts";

/** A hunk's RIGHT-side lines: `[path, first, last]`. */
export type Anchor = [string, number, number];

/** Hunks kept per review (one per finding at most). */
const MAX_ANCHORS = 200;
/** Older reviews minimized per publish (the most recent first). */
const MAX_MINIMIZED = 10;

/**
 * The hunks of `diff` that hold a finding's first line, as `[path, first, last]` RIGHT-side ranges.
 *
 * @example
 * ```ts
 * findingAnchors(diff, findings); // [["src/app.ts", 1, 3]]
 * ```
 */
export function findingAnchors(diff: string, findings: Finding[]): Anchor[] {
  const lines = commentableLines(diff);
  const anchors = new Map<string, Anchor>();
  for (const f of findings) {
    if (anchors.size >= MAX_ANCHORS) break;
    const file = lines.get(f.file_path);
    const hunk = f.line_start === null ? undefined : file?.get(f.line_start);
    if (file === undefined || hunk === undefined || !plainPath(f.file_path)) continue;
    const id = `${f.file_path}\n${hunk}`;
    if (anchors.has(id)) continue;
    let first = Infinity;
    let last = -Infinity;
    for (const [line, h] of file) {
      if (h !== hunk) continue;
      first = Math.min(first, line);
      last = Math.max(last, line);
    }
    anchors.set(id, [f.file_path, first, last]);
  }
  return [...anchors.values()];
}

/** Paths a `diff --git a/P b/P` line carries without Git's quoting. */
function plainPath(path: string): boolean {
  // deno-lint-ignore no-control-regex
  return path !== "" && !/["\\\x00-\x1f\x7f]/.test(path);
}

/**
 * A diff with the anchored hunks only (context lines of no text): the same commentable lines and
 * hunks as the diff the anchors came from.
 *
 * @example
 * ```ts
 * commentableLines(anchorDiff([["a.ts", 2, 3]])).get("a.ts"); // Map { 2 => 0, 3 => 0 }
 * ```
 */
export function anchorDiff(anchors: Anchor[]): string {
  const byPath = new Map<string, Array<[number, number]>>();
  for (const [path, first, last] of anchors) {
    byPath.set(path, [...(byPath.get(path) ?? []), [first, last]]);
  }
  const parts: string[] = [];
  for (const [path, ranges] of byPath) {
    parts.push(`diff --git a/${path} b/${path}\n--- a/${path}\n+++ b/${path}\n`);
    for (const [first, last] of ranges.sort((a, b) => a[0] - b[0])) {
      const count = last - first + 1;
      parts.push(`@@ -${first},${count} +${first},${count} @@\n${" \n".repeat(count)}`);
    }
  }
  return parts.join("");
}

/**
 * Posts the head's inline review unless one exists (`knownId`, else our marker for this head on
 * GitHub); after a create whose outcome is unknown it looks again. `null` when there is nothing to
 * post inline. Then minimizes our reviews of earlier heads, best-effort.
 *
 * @example
 * ```ts
 * const posted = await postInlineReview(github, { repo, pullNumber, headSha, reviewId, findings,
 *   anchors, minSeverity: "info" }, log);
 * ```
 */
export async function postInlineReview(
  github: GitHubClient,
  input: {
    repo: string;
    pullNumber: number;
    headSha: string;
    reviewId: string;
    findings: Finding[];
    anchors: Anchor[];
    minSeverity: Severity;
    knownId?: number;
  },
  warn: (message: string, context: Record<string, unknown>) => void,
): Promise<PostedReview | null> {
  const { repo, pullNumber, headSha } = input;
  const ours = await github.findReviews(repo, pullNumber, INLINE_REVIEW_MARKER);
  const ofHead = (r: PostedReview) => parseInlineReviewMarker(r.body)?.headSha === headSha;
  let posted = ours.find((r) => r.id === input.knownId) ?? ours.find(ofHead) ?? null;
  if (!posted) {
    const planned = buildInlineReview({
      findings: input.findings,
      diff: anchorDiff(input.anchors),
      headSha,
      reviewId: input.reviewId,
      minSeverity: input.minSeverity,
    });
    if (planned.comments.length > 0) {
      const review = { commitId: headSha, body: planned.body, comments: planned.comments };
      try {
        posted = await github.createReview(repo, pullNumber, review);
      } catch (error) {
        if (!(error instanceof ReviewError) || !error.ambiguous) throw error;
        posted = (await github.findReviews(repo, pullNumber, INLINE_REVIEW_MARKER)).find(ofHead) ??
          null;
        if (!posted) throw error;
      }
    }
  }
  await minimizeOlder(github, ours.filter((r) => !ofHead(r)), warn);
  return posted;
}

/** Minimizes our reviews of earlier heads as outdated (the newest first), best-effort. */
async function minimizeOlder(
  github: GitHubClient,
  older: PostedReview[],
  warn: (message: string, context: Record<string, unknown>) => void,
) {
  for (const review of older.sort((a, b) => b.id - a.id).slice(0, MAX_MINIMIZED)) {
    try {
      await github.minimizeOutdated(review.nodeId);
    } catch (error) {
      warn("could not minimize an outdated review", {
        reviewId: review.id,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
