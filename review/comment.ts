/**
 * The PR comment: a hidden marker, a summary, and a table of findings, kept under GitHub's
 * 65536-character limit.
 *
 * @module
 */
import type { Finding } from "../kv/records.ts";
import { countBySeverity, SEVERITY_ORDER, severityRank } from "./findings.ts";
import { compareText } from "./text.ts";

/** First line of every comment the service posts. */
export const REVIEW_COMMENT_MARKER = "<!-- ai-code-review:v1 -->";

/** Comment bodies stay below this, leaving room under GitHub's 65536-character limit. */
export const MAX_COMMENT_CHARS = 60_000;

/** Footer and "…and N more" line: most they can add beyond the counted rows. */
const MORE_LINE_ROOM = 80;

/** One table cell: newlines flattened, `|` escaped, cut to `max` characters. */
function cell(text: string, max = 300): string {
  const start = text.trimStart();
  // Every raw character gives at least one (only "\r\n" gives one for two): 2·max+2 are enough.
  const cut = start.length > 2 * max + 2;
  const flat = (cut ? start.slice(0, 2 * max + 2) : start).replace(/\r\n|\r|\n/g, " ")
    .replace(/\|/g, "\\|").trim();
  if (flat.length <= max && !cut) return flat;
  // Never leave a dangling backslash that would escape the cell's closing pipe.
  return `${flat.slice(0, max - 1).replace(/[\uD800-\uDBFF]$/, "").replace(/\\+$/, "")}…`;
}

/** A file path as inline code (a path with backticks gets a longer fence). */
function codeCell(path: string): string {
  const text = cell(path, 200);
  if (!text) return "";
  return text.includes("`") ? `\`\` ${text} \`\`` : `\`${text}\``;
}

/** Severity (most severe first), then file, then line (file-level findings first). */
function sortFindings(findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) =>
    severityRank(a.severity) - severityRank(b.severity) ||
    compareText(a.file_path, b.file_path) ||
    (a.line_start ?? -1) - (b.line_start ?? -1)
  );
}

function row(f: Finding): string {
  const title = `**${cell(f.title, 200)}**`;
  const description = cell(f.description);
  const detail = f.suggestion
    ? `${title} — ${description} _Suggestion:_ ${cell(f.suggestion, 200)}`
    : `${title} — ${description}`;
  return `| ${f.severity} | ${codeCell(f.file_path)} | ${f.line_start ?? ""} | ${detail} |`;
}

/** The configuration's problems and what was left out, as short quoted notes (bounded). */
function notes(problems: string[] = [], leftOut: string[] = []): string[] {
  const lines: string[] = [];
  if (problems.length) {
    lines.push(
      "> **`.github/ai-review.yml` could not be used, so the defaults were:**",
      ...problems.slice(0, 20).map((p) => `> - ${cell(p, 300)}`),
      "",
    );
  }
  if (leftOut.length) {
    lines.push(
      "> **Not reviewed:**",
      ...leftOut.slice(0, 10).map((l) => `> - ${cell(l, 400)}`),
      "",
    );
  }
  return lines;
}

/**
 * Formats the review comment: the marker on the first line, a heading, the short head sha, counts
 * per severity, the summary, and a table of findings ordered by severity, file and line. Rows that
 * would take the body past {@link MAX_COMMENT_CHARS} are left out and counted instead.
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
  /** What was not reviewed, one line per reason (ignored paths, size bounds). */
  leftOut?: string[];
  /** Invalid fields of the repository's configuration file (defaults were used). */
  configProblems?: string[];
  /** Set when the review failed: why. */
  failedBecause?: string;
}): string {
  const counts = countBySeverity(input.findings);
  const countLine = SEVERITY_ORDER.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`)
    .join(", ");
  const total = input.findings.length;
  const where = `head \`${input.headSha.slice(0, 7)}\` of ${
    input.repo.slice(0, 300)
  }#${input.pullNumber}`;
  const head = input.failedBecause !== undefined
    ? [
      REVIEW_COMMENT_MARKER,
      `## AI code review failed`,
      "",
      `The review of ${where} failed: ${cell(input.failedBecause, 1_000) || "unknown error"}`,
      "",
      "Comment `/review` on this pull request to retry.",
      "",
    ]
    : [
      REVIEW_COMMENT_MARKER,
      `## AI code review`,
      "",
      `Reviewed ${where}: ` +
      (total ? `${total} ${total === 1 ? "finding" : "findings"} (${countLine}).` : "no findings."),
      "",
    ];
  head.push(...notes(input.configProblems, input.leftOut));
  const summary = input.summary?.trim();
  if (summary) {
    head.push(summary.length > 10_000 ? `${summary.slice(0, 9_999)}…` : summary, "");
  }
  const footer = ["", `<sub>review ${cell(input.reviewId, 200)}</sub>`];
  if (input.failedBecause !== undefined && total === 0) return [...head, ...footer].join("\n");
  if (total === 0) return [...head, "No findings.", ...footer].join("\n");

  const lines = [...head, "| Severity | File | Line | Finding |", "|---|---|---|---|"];
  let size = lines.join("\n").length + footer.join("\n").length + 1 + MORE_LINE_ROOM;
  const sorted = sortFindings(input.findings);
  let shown = 0;
  for (const f of sorted) {
    const line = row(f);
    if (size + line.length + 1 > MAX_COMMENT_CHARS) break;
    lines.push(line);
    size += line.length + 1;
    shown++;
  }
  const hidden = sorted.length - shown;
  if (hidden > 0) {
    lines.push("", `…and ${hidden} more ${hidden === 1 ? "finding" : "findings"} not shown.`);
  }
  return [...lines, ...footer].join("\n");
}
