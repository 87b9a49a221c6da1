/**
 * The GitHub pull-request review with inline comments: which findings sit on lines of the diff
 * (commented inline, with a suggested change where the agent gave exact replacement text) and
 * which do not (listed in the review body). Pure: no network, no KV.
 *
 * @module
 */
import type { Finding, Severity } from "../kv/records.ts";
import { MAX_COMMENT_CHARS } from "./comment.ts";
import { splitDiff } from "./diff.ts";
import { severityRank } from "./findings.ts";
import { closeOpenFence, compareText, cutText, oneLine } from "./text.ts";

/**
 * First line of every inline review body we post; followed on the same line by
 * ` head=<sha> review=<id>` inside the same HTML comment.
 *
 * @example
 * ```ts
 * inlineReviewMarker("abc", "r1").startsWith(INLINE_REVIEW_MARKER); // true
 * ```
 */
export const INLINE_REVIEW_MARKER = "<!-- ai-code-review:inline:v1";

/** Each inline comment's body stays below this (a stored replacement is at most 8 KiB). */
export const MAX_INLINE_COMMENT_CHARS = 10_000;

/** Inline comments per review unless told otherwise. */
export const DEFAULT_MAX_INLINE_COMMENTS = 50;

/**
 * The marker line of an inline review: head sha and review id, URI-encoded so that no value can
 * end the HTML comment or split the line.
 *
 * @example
 * ```ts
 * inlineReviewMarker("abc123", "r1"); // "<!-- ai-code-review:inline:v1 head=abc123 review=r1 -->"
 * ```
 */
export function inlineReviewMarker(headSha: string, reviewId: string): string {
  return `${INLINE_REVIEW_MARKER} head=${encodeURIComponent(headSha)} review=${
    encodeURIComponent(reviewId)
  } -->`;
}

const MARKER_LINE = /^<!-- ai-code-review:inline:v1 head=(\S*) review=(\S*) -->\r?$/;

/**
 * Parses our marker from the first line of a review body: `{ headSha, reviewId }`, or null for any
 * other text (including our marker quoted further down).
 *
 * @example
 * ```ts
 * parseInlineReviewMarker(inlineReviewMarker("abc", "r1")); // { headSha: "abc", reviewId: "r1" }
 * parseInlineReviewMarker("LGTM"); // null
 * ```
 */
export function parseInlineReviewMarker(
  body: string | null | undefined,
): { headSha: string; reviewId: string } | null {
  if (!body) return null;
  const match = body.split("\n", 1)[0].match(MARKER_LINE);
  if (!match) return null;
  try {
    return { headSha: decodeURIComponent(match[1]), reviewId: decodeURIComponent(match[2]) };
  } catch {
    return null; // Malformed %-escapes: not ours.
  }
}

/**
 * The lines on the RIGHT side of each file's hunks (added and context lines, numbered as in the
 * new file), each with the index of its hunk within the file (GitHub wants a multi-line comment's
 * `start_line` and `line` in one hunk). Hunk bodies are read as far as the header's counts go.
 *
 * @example
 * ```ts
 * const lines = commentableLines("diff --git a/x b/x\n@@ -1,2 +1,3 @@\n a\n+b\n c\n");
 * [...lines.get("x")!.keys()]; // [1, 2, 3]
 * ```
 */
export function commentableLines(diff: string): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  const hunks = new Map<string, number>(); // A path's sections share one hunk numbering.
  for (const file of splitDiff(diff)) {
    const lines = out.get(file.path) ?? new Map<number, number>();
    out.set(file.path, lines);
    let hunk = hunks.get(file.path) ?? -1;
    let next = 0;
    let oldLeft = 0;
    let newLeft = 0;
    for (const raw of file.text.split("\n")) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      const header = line.match(/^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/);
      if (header) {
        hunks.set(file.path, ++hunk);
        oldLeft = Number(header[1] ?? 1);
        next = Number(header[2]);
        newLeft = Number(header[3] ?? 1);
        continue;
      }
      if (oldLeft <= 0 && newLeft <= 0) continue;
      const kind = line === "" ? " " : line[0];
      if (kind === "+" && newLeft > 0) {
        lines.set(next++, hunk);
        newLeft--;
      } else if (kind === "-" && oldLeft > 0) {
        oldLeft--;
      } else if (kind === " " && oldLeft > 0 && newLeft > 0) {
        lines.set(next++, hunk);
        oldLeft--;
        newLeft--;
      } else if (kind !== "\\") {
        oldLeft = newLeft = 0; // Not a hunk line: the hunk is over (or the diff is malformed).
      }
    }
  }
  return out;
}

/**
 * Where a finding can be shown on the diff: `start`..`end` (equal for one line) when its first
 * line is commentable; a range only when all of it is in the same hunk. Null when the file or the
 * line is not in the diff.
 *
 * @example
 * ```ts
 * const lines = commentableLines("diff --git a/x b/x\n@@ -0,0 +1,2 @@\n+a\n+b\n");
 * diffPlacement({ file_path: "x", line_start: 1, line_end: 2 }, lines); // { start: 1, end: 2 }
 * ```
 */
export function diffPlacement(
  finding: Pick<Finding, "file_path" | "line_start" | "line_end">,
  lines: Map<string, Map<number, number>>,
): { start: number; end: number } | null {
  const file = lines.get(finding.file_path);
  const start = finding.line_start;
  if (!file || start === null) return null;
  const hunk = file.get(start);
  if (hunk === undefined) return null;
  const last = finding.line_end ?? start;
  if (last <= start) return { start, end: start };
  // Stops at the first line outside the hunk, so a huge line_end costs at most one hunk.
  for (let l = start + 1; l <= last; l++) {
    if (file.get(l) !== hunk) return { start, end: start };
  }
  return { start, end: last };
}

/**
 * One inline comment of a pull-request review (GitHub's `comments[]` of "create a review").
 *
 * @example
 * ```ts
 * const c: InlineComment = { path: "a.ts", line: 3, side: "RIGHT", body: "Careful" };
 * ```
 */
export interface InlineComment {
  path: string;
  line: number;
  side: "RIGHT";
  start_line?: number;
  start_side?: "RIGHT";
  body: string;
}

const BADGE: Record<Severity, string> = {
  critical: "🔴",
  high: "🟠",
  medium: "🟡",
  low: "🔵",
  info: "⚪",
};

/**
 * Builds the inline review: comments for findings at or above `minSeverity` on commentable lines
 * (at most `maxComments`, most severe kept, ordered by file then line), and a body that starts
 * with the marker and lists the other findings at or above `minSeverity` (bounded to
 * {@link MAX_COMMENT_CHARS}). Findings below `minSeverity` are left out.
 *
 * @example
 * ```ts
 * const review = buildInlineReview({
 *   findings: [{ severity: "high", file_path: "x", line_start: 1, title: "t", description: "d",
 *     agent_type: "security" }],
 *   diff: "diff --git a/x b/x\n@@ -0,0 +1 @@\n+a\n", headSha: "abc", reviewId: "r1",
 *   minSeverity: "medium",
 * });
 * review.comments[0].line; // 1
 * ```
 */
export function buildInlineReview(input: {
  findings: Finding[];
  diff: string;
  headSha: string;
  reviewId: string;
  minSeverity: Severity;
  maxComments?: number;
}): { body: string; comments: InlineComment[]; outsideDiff: Finding[] } {
  const lines = commentableLines(input.diff);
  const limit = Math.max(0, Math.floor(input.maxComments ?? DEFAULT_MAX_INLINE_COMMENTS));
  const threshold = severityRank(input.minSeverity);
  const placed: { finding: Finding; start: number; end: number }[] = [];
  const outside: { finding: Finding; reason: string }[] = [];
  for (
    const finding of bySeverity(input.findings.filter((f) => severityRank(f.severity) <= threshold))
  ) {
    const where = diffPlacement(finding, lines);
    if (where && placed.length < limit) placed.push({ finding, ...where });
    else outside.push({ finding, reason: outsideReason(finding, lines, where !== null) });
  }
  placed.sort((a, b) =>
    compareText(a.finding.file_path, b.finding.file_path) || a.start - b.start ||
    a.end - b.end
  );
  const comments = placed.map(({ finding, start, end }): InlineComment => {
    const body = commentBody(finding, start, end);
    return start < end
      ? {
        path: finding.file_path,
        line: end,
        side: "RIGHT",
        start_line: start,
        start_side: "RIGHT",
        body,
      }
      : { path: finding.file_path, line: end, side: "RIGHT", body };
  });
  return {
    body: reviewBody(input, comments.length, outside),
    comments,
    outsideDiff: outside.map((o) => o.finding),
  };
}

/** Severity (most severe first), then file, then line (no line first); stable otherwise. */
function bySeverity(findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) =>
    severityRank(a.severity) - severityRank(b.severity) || compareText(a.file_path, b.file_path) ||
    (a.line_start ?? -1) - (b.line_start ?? -1)
  );
}

function outsideReason(
  finding: Finding,
  lines: Map<string, Map<number, number>>,
  placeable: boolean,
): string {
  if (placeable) return "comment limit reached";
  if (!lines.has(finding.file_path)) return "file not in the diff";
  if (finding.line_start === null) return "no line";
  return "line not in the diff";
}

/** Markdown cut to `max` characters with any code block it leaves open closed. */
function fitMarkdown(text: string, max: number): string {
  let out = closeOpenFence(cutText(text, max));
  if (out.length > max) out = closeOpenFence(cutText(text, Math.max(0, 2 * max - out.length)));
  return out.length <= max ? out : cutText(text, max);
}

/** A GitHub suggestion block whose fence is longer than any backtick run in the replacement. */
function suggestionBlock(replacement: string): string {
  const longest = Math.max(0, ...(replacement.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  // "a\nb" and "a\nb\n" are both two lines; "" deletes the lines, "\n" is one empty line.
  const content = replacement === "" ? "" : `${replacement.replace(/\r?\n$/, "")}\n`;
  return `${fence}suggestion\n${content}${fence}`;
}

function commentBody(finding: Finding, start: number, end: number): string {
  const title = oneLine(finding.title, 300) || "Finding";
  const parts = [`${BADGE[finding.severity]} \`${finding.severity}\` **${title}**`];
  const description = finding.description.trim();
  if (description) parts.push(description);
  const advice = finding.suggestion?.trim();
  if (advice) parts.push(`**Suggestion:** ${advice}`);
  const head = parts.join("\n\n");
  const covers = finding.line_start === start &&
    Math.max(finding.line_end ?? start, start) === end;
  if (finding.replacement === undefined || !covers) {
    return fitMarkdown(head, MAX_INLINE_COMMENT_CHARS);
  }
  const block = suggestionBlock(finding.replacement);
  const headRoom = MAX_INLINE_COMMENT_CHARS - block.length - 2;
  // Keep the suggested change whole when the heading still has room; otherwise drop it.
  if (headRoom >= 1_000) return `${fitMarkdown(head, headRoom)}\n\n${block}`;
  const note = "\n\n_The suggested change is too long to show._";
  return `${fitMarkdown(head, MAX_INLINE_COMMENT_CHARS - note.length)}${note}`;
}

/** A path as inline code (a path with backticks gets a longer fence). */
function codePath(path: string): string {
  const text = oneLine(path, 200);
  if (!text) return "(no file)";
  return text.includes("`") ? `\`\` ${text} \`\`` : `\`${text}\``;
}

function listItem(finding: Finding, reason: string): string {
  const start = finding.line_start;
  const end = finding.line_end ?? start;
  const where = start === null
    ? ""
    : end !== null && end > start
    ? ` lines ${start}–${end}`
    : ` line ${start}`;
  const description = oneLine(finding.description, 300);
  return `- ${BADGE[finding.severity]} \`${finding.severity}\` ${
    codePath(finding.file_path)
  }${where}` +
    ` — **${oneLine(finding.title, 200) || "Finding"}**` +
    (description ? ` — ${description}` : "") + ` _(${reason})_`;
}

/** "…and N more" line: most it can take. */
const MORE_LINE_ROOM = 80;

function reviewBody(
  input: { headSha: string; reviewId: string; minSeverity: Severity },
  inline: number,
  outside: { finding: Finding; reason: string }[],
): string {
  const comments = `${inline} inline ${inline === 1 ? "comment" : "comments"}`;
  const lines = [
    inlineReviewMarker(input.headSha, input.reviewId),
    `**AI code review** of \`${oneLine(input.headSha, 40).slice(0, 7)}\`: ${comments}` +
    (outside.length ? `, ${outside.length} outside the diff.` : ".") +
    (input.minSeverity === "info"
      ? ""
      : ` Findings below ${input.minSeverity} are in the summary comment only.`),
  ];
  if (!outside.length) return lines.join("\n");
  lines.push("", "#### Findings outside the diff", "");
  let size = lines.join("\n").length + MORE_LINE_ROOM;
  let shown = 0;
  for (const { finding, reason } of outside) {
    const item = listItem(finding, reason);
    if (size + item.length + 1 > MAX_COMMENT_CHARS) break;
    lines.push(item);
    size += item.length + 1;
    shown++;
  }
  if (shown < outside.length) lines.push("", `…and ${outside.length - shown} more.`);
  return lines.join("\n");
}
