/**
 * The PR comment: a hidden marker, a summary, and a table of findings, kept under GitHub's
 * 65536-character limit.
 *
 * @module
 */
import type { Finding } from "../kv/records.ts";
import { countBySeverity, SEVERITY_ORDER } from "./findings.ts";

/** First line of every comment the service posts. */
export const REVIEW_COMMENT_MARKER = "<!-- ai-code-review:v1 -->";

/** Comment bodies stay below this, leaving room under GitHub's 65536-character limit. */
export const MAX_COMMENT_CHARS = 60_000;

function cell(text: string, max = 300): string {
  const flat = text.replace(/\r?\n/g, " ").replace(/\|/g, "\\|").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function sortFindings(findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) =>
    SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity) ||
    a.file_path.localeCompare(b.file_path) ||
    (a.line_start ?? -1) - (b.line_start ?? -1)
  );
}

/**
 * Formats the review comment.
 *
 * @example
 * ```ts
 * const body = formatReviewComment({ repo: "o/r", pullNumber: 1, headSha: "abc1234def",
 *   findings: [], reviewId: "r1" });
 * body.startsWith(REVIEW_COMMENT_MARKER); // true
 * ```
 */
export function formatReviewComment(input: {
  repo: string;
  pullNumber: number;
  headSha: string;
  summary?: string;
  findings: Finding[];
  reviewId: string;
}): string {
  const counts = countBySeverity(input.findings);
  const countLine = SEVERITY_ORDER.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`)
    .join(", ");
  const head = [
    REVIEW_COMMENT_MARKER,
    `## AI code review`,
    "",
    `Reviewed head \`${input.headSha.slice(0, 7)}\` of ${input.repo}#${input.pullNumber}: ` +
    (input.findings.length ? `${input.findings.length} findings (${countLine}).` : "no findings."),
    "",
  ];
  if (input.summary) head.push(input.summary.slice(0, 10_000), "");
  const footer = ["", `<sub>review ${input.reviewId}</sub>`];
  if (input.findings.length === 0) {
    return [...head, "No findings.", ...footer].join("\n");
  }
  const lines = [...head, "| Severity | File | Line | Finding |", "|---|---|---|---|"];
  let size = lines.join("\n").length + footer.join("\n").length + 200;
  const sorted = sortFindings(input.findings);
  let shown = 0;
  for (const f of sorted) {
    const detail = f.suggestion
      ? `**${cell(f.title, 200)}** — ${cell(f.description)} _Suggestion:_ ${
        cell(f.suggestion, 200)
      }`
      : `**${cell(f.title, 200)}** — ${cell(f.description)}`;
    const row = `| ${f.severity} | \`${cell(f.file_path, 200)}\` | ${
      f.line_start ?? ""
    } | ${detail} |`;
    if (size + row.length + 1 > MAX_COMMENT_CHARS) break;
    lines.push(row);
    size += row.length + 1;
    shown++;
  }
  if (shown < sorted.length) {
    lines.push("", `…and ${sorted.length - shown} more findings not shown.`);
  }
  return [...lines, ...footer].join("\n");
}
