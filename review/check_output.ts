/**
 * The check run of a review: its conclusion, its annotations (findings on lines of the diff) in
 * batches GitHub accepts, its output title and summary, and the text of the commit status used
 * when checks cannot be written. Pure: no network, no KV.
 *
 * @module
 */
import type { Finding, Severity } from "../kv/records.ts";
import { countBySeverity, SEVERITY_ORDER, severityRank } from "./findings.ts";
import { closeOpenFence, compareText, cutText, oneLine } from "./text.ts";
import { commentableLines, diffPlacement } from "./inline_review.ts";

/**
 * The name of the check run (and the context of the commit status fallback).
 *
 * @example
 * ```ts
 * CHECK_RUN_NAME; // "AI review"
 * ```
 */
export const CHECK_RUN_NAME = "AI review";

/** GitHub accepts at most this many annotations per request. */
export const MAX_ANNOTATIONS_PER_REQUEST = 50;

/** The check run summary stays below this (GitHub's limit is 65,535 characters). */
export const MAX_CHECK_SUMMARY_CHARS = 65_000;

/**
 * One check run annotation.
 *
 * @example
 * ```ts
 * const a: CheckAnnotation = { path: "a.ts", start_line: 1, end_line: 1,
 *   annotation_level: "warning", title: "t", message: "m" };
 * ```
 */
export interface CheckAnnotation {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: "failure" | "warning" | "notice";
  title: string;
  message: string;
}

const LEVEL: Record<Severity, CheckAnnotation["annotation_level"]> = {
  critical: "failure",
  high: "failure",
  medium: "warning",
  low: "warning",
  info: "notice",
};

/**
 * The check run's conclusion: `failure` when the review failed, `neutral` when some finding is at
 * or above `threshold`, `success` otherwise.
 *
 * @example
 * ```ts
 * checkConclusion({ findings: [], threshold: "high", failed: false }); // "success"
 * ```
 */
export function checkConclusion(
  input: { findings: Finding[]; threshold: Severity; failed: boolean },
): "success" | "neutral" | "failure" {
  if (input.failed) return "failure";
  const limit = severityRank(input.threshold);
  return input.findings.some((f) => severityRank(f.severity) <= limit) ? "neutral" : "success";
}

/**
 * Annotations for the findings on commentable lines of the diff (critical/high → failure,
 * medium/low → warning, info → notice), most severe first, then by file and line. A range is kept
 * when all of it is in one hunk, otherwise its first line is annotated. Title ≤ 255 characters,
 * message ≤ 60,000.
 *
 * @example
 * ```ts
 * checkAnnotations([{ severity: "high", file_path: "x", line_start: 1, title: "t",
 *   description: "d", agent_type: "a" }], "diff --git a/x b/x\n@@ -0,0 +1 @@\n+a\n")[0]
 *   .annotation_level; // "failure"
 * ```
 */
export function checkAnnotations(findings: Finding[], diff: string): CheckAnnotation[] {
  const lines = commentableLines(diff);
  const out: { rank: number; annotation: CheckAnnotation }[] = [];
  for (const finding of findings) {
    const where = diffPlacement(finding, lines);
    if (!where) continue;
    const advice = finding.suggestion?.trim();
    const message = finding.description.trim() + (advice ? `\n\nSuggestion: ${advice}` : "");
    out.push({
      rank: severityRank(finding.severity),
      annotation: {
        path: finding.file_path,
        start_line: where.start,
        end_line: where.end,
        annotation_level: LEVEL[finding.severity],
        title: oneLine(finding.title, 255) || "Finding",
        message: cutText(message, 60_000) || oneLine(finding.title, 255) || "Finding",
      },
    });
  }
  return out.sort((a, b) =>
    a.rank - b.rank || compareText(a.annotation.path, b.annotation.path) ||
    a.annotation.start_line - b.annotation.start_line
  ).map((o) => o.annotation);
}

/**
 * Splits annotations into batches of at most `size` (GitHub takes 50 per request), in order.
 *
 * @example
 * ```ts
 * annotationBatches([], 50); // []
 * ```
 */
export function annotationBatches(
  annotations: CheckAnnotation[],
  size = MAX_ANNOTATIONS_PER_REQUEST,
): CheckAnnotation[][] {
  const step = Math.max(1, Math.floor(size) || 1);
  const batches: CheckAnnotation[][] = [];
  for (let i = 0; i < annotations.length; i += step) {
    batches.push(annotations.slice(i, i + step));
  }
  return batches;
}

/** "2 findings (1 critical, 1 low)" or "No findings". */
function countText(findings: Finding[]): string {
  if (!findings.length) return "No findings";
  const counts = countBySeverity(findings);
  const parts = SEVERITY_ORDER.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`);
  return `${findings.length} ${findings.length === 1 ? "finding" : "findings"} (${
    parts.join(", ")
  })`;
}

/** A bullet list of one-line items, bounded to `max` characters with an "…and N more" line. */
function bulletList(items: string[], max: number): string[] {
  const out: string[] = [];
  let size = 40; // Room for the "…and N more" line.
  for (const item of items) {
    const line = `- ${oneLine(item, 1_000)}`;
    if (size + line.length + 1 > max) break;
    out.push(line);
    size += line.length + 1;
  }
  if (out.length < items.length) out.push(`- …and ${items.length - out.length} more`);
  return out;
}

/**
 * The check run's output: a title, and a markdown summary (≤ {@link MAX_CHECK_SUMMARY_CHARS})
 * with the counts per severity, the agent's summary, configuration problems, what was left out
 * of the review, and for a failed review the reason and how to retry.
 *
 * @example
 * ```ts
 * checkOutput({ findings: [], failedBecause: "agent timed out" }).title; // "Review failed"
 * ```
 */
export function checkOutput(input: {
  findings: Finding[];
  summary?: string;
  failedBecause?: string;
  leftOut?: string[];
  configProblems?: string[];
}): { title: string; summary: string } {
  const failed = input.failedBecause !== undefined;
  const counts = countText(input.findings);
  const title = failed ? "Review failed" : counts;
  const parts: string[] = [];
  if (failed) {
    const reason = cutText(input.failedBecause!.trim(), 4_000) || "unknown error";
    parts.push(
      `**The review failed:** ${reason}\n\nComment \`/review\` on the pull request to retry.`,
    );
  }
  if (!failed || input.findings.length) {
    const counts = countBySeverity(input.findings);
    parts.push(
      `**${countText(input.findings)}.**\n\n| Severity | Findings |\n|---|---|\n` +
        SEVERITY_ORDER.map((s) => `| ${s} | ${counts[s]} |`).join("\n"),
    );
  }
  const summary = input.summary?.trim();
  if (summary) parts.push(`### Summary\n\n${summary}`);
  if (input.configProblems?.length) {
    parts.push(
      ["### Configuration problems", "", ...bulletList(input.configProblems, 8_000)].join("\n"),
    );
  }
  if (input.leftOut?.length) {
    parts.push(["### Not reviewed", "", ...bulletList(input.leftOut, 8_000)].join("\n"));
  }
  return { title, summary: boundSummary(parts) };
}

/** Joins the parts; the agent's summary (the only unbounded part) is cut to fit. */
function boundSummary(parts: string[]): string {
  const text = parts.join("\n\n");
  if (text.length <= MAX_CHECK_SUMMARY_CHARS) return text;
  const at = parts.findIndex((p) => p.startsWith("### Summary\n\n"));
  const others = parts.reduce((n, p, i) => (i === at ? n : n + p.length + 2), 0);
  if (at >= 0) {
    const room = Math.max(0, MAX_CHECK_SUMMARY_CHARS - others - 40);
    parts = parts.with(at, closeOpenFence(cutText(parts[at], room)));
  }
  return cutText(parts.join("\n\n"), MAX_CHECK_SUMMARY_CHARS);
}

/**
 * The description of the commit status used when check runs cannot be written (≤ 140
 * characters): the counts, or why the review failed and how to retry.
 *
 * @example
 * ```ts
 * statusDescription({ findings: [] }); // "No findings"
 * ```
 */
export function statusDescription(input: { findings: Finding[]; failedBecause?: string }): string {
  if (input.failedBecause !== undefined) {
    const retry = " Comment /review to retry.";
    const reason = oneLine(input.failedBecause, 140 - retry.length - "Failed: .".length)
      .replace(/\.$/, "") || "unknown error";
    return `Failed: ${reason}.${retry}`;
  }
  return cutText(countText(input.findings), 140);
}
