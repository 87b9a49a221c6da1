import assert from "node:assert/strict";
import fc from "fast-check";
import type { Finding, Severity } from "../kv/records.ts";
import { MAX_COMMENT_CHARS } from "./comment.ts";
import { addedLines, splitDiff } from "./diff.ts";
import {
  buildInlineReview,
  commentableLines,
  INLINE_REVIEW_MARKER,
  inlineReviewMarker,
  MAX_INLINE_COMMENT_CHARS,
  parseInlineReviewMarker,
} from "./inline_review.ts";

/** a.ts: hunk 0 covers new lines 1–4 (2 and 3 added), hunk 1 covers new lines 20–22 (21 added). */
const DIFF = [
  "diff --git a/src/a.ts b/src/a.ts",
  "index 111..222 100644",
  "--- a/src/a.ts",
  "+++ b/src/a.ts",
  "@@ -1,3 +1,4 @@",
  " one",
  "+two",
  "+three",
  "-old",
  " four",
  "@@ -19,2 +20,3 @@ function f() {",
  " twenty",
  "+twentyone",
  " twentytwo",
  "diff --git a/src/b.ts b/src/b.ts",
  "new file mode 100644",
  "--- /dev/null",
  "+++ b/src/b.ts",
  "@@ -0,0 +1,2 @@",
  "+x",
  "+y",
  "",
].join("\n");

const finding = (over: Partial<Finding>): Finding => ({
  severity: "high",
  file_path: "src/a.ts",
  line_start: 2,
  title: "Title",
  description: "Description",
  agent_type: "security",
  ...over,
});

const build = (findings: Finding[], over: Partial<Parameters<typeof buildInlineReview>[0]> = {}) =>
  buildInlineReview({
    findings,
    diff: DIFF,
    headSha: "0123456789abcdef",
    reviewId: "r1",
    minSeverity: "low",
    ...over,
  });

Deno.test("commentableLines: added and context lines of the RIGHT side, with their hunk", () => {
  const lines = commentableLines(DIFF);
  assert.deepEqual([...lines.keys()], ["src/a.ts", "src/b.ts"]);
  assert.deepEqual([...lines.get("src/a.ts")!], [[1, 0], [2, 0], [3, 0], [4, 0], [20, 1], [
    21,
    1,
  ], [22, 1]]);
  assert.deepEqual([...lines.get("src/b.ts")!], [[1, 0], [2, 0]]);
});

Deno.test("a finding on an added line is one inline comment with path, line and side", () => {
  const review = build([finding({ line_start: 2, title: "Bad call", description: "Why." })]);
  assert.equal(review.comments.length, 1);
  const [c] = review.comments;
  assert.equal(c.path, "src/a.ts");
  assert.equal(c.line, 2);
  assert.equal(c.side, "RIGHT");
  assert.equal(c.start_line, undefined);
  assert.equal(c.start_side, undefined);
  assert.match(c.body, /\*\*Bad call\*\*/);
  assert.match(c.body, /high/);
  assert.match(c.body, /Why\./);
  assert.deepEqual(review.outsideDiff, []);
  assert.doesNotMatch(review.body, /Findings outside the diff/);
});

Deno.test("a finding on a context line inside a hunk is inline", () => {
  const review = build([finding({ line_start: 20 })]);
  assert.deepEqual(review.comments.map((c) => c.line), [20]);
});

Deno.test("outside any hunk, a file not in the diff, or no line: listed in the body", () => {
  const outside = [
    finding({ line_start: 10, title: "between hunks" }),
    finding({ file_path: "src/other.ts", line_start: 1, title: "other file" }),
    finding({ line_start: null, title: "whole file" }),
  ];
  const review = build(outside);
  assert.deepEqual(review.comments, []);
  assert.equal(review.outsideDiff.length, 3);
  assert.match(review.body, /Findings outside the diff/);
  for (const title of ["between hunks", "other file", "whole file"]) {
    assert.match(review.body, new RegExp(`\\*\\*${title}\\*\\*`));
  }
  assert.match(review.body, /line not in the diff/);
  assert.match(review.body, /file not in the diff/);
  assert.match(review.body, /no line/);
});

Deno.test("a range in one hunk uses start_line; a range across hunks comments its first line", () => {
  const review = build([
    finding({ line_start: 2, line_end: 4, title: "in hunk" }),
    finding({ line_start: 3, line_end: 21, title: "across" }),
  ]);
  assert.deepEqual(
    review.comments.map((c) => [c.start_line, c.start_side, c.line]),
    [[2, "RIGHT", 4], [undefined, undefined, 3]],
  );
});

Deno.test("a replacement becomes a suggestion block with a fence longer than its backticks", () => {
  const replacement = "const s = `x`;\n```\ncode\n```\n";
  const review = build([finding({ line_start: 21, replacement, suggestion: "Use a template." })]);
  const body = review.comments[0].body;
  assert.match(body, /\*\*Suggestion:\*\* Use a template\./);
  assert.ok(body.endsWith("````suggestion\nconst s = `x`;\n```\ncode\n```\n````"), body);
  assert.ok(body.indexOf("Use a template.") < body.indexOf("````suggestion"));
});

Deno.test("a replacement for a range in one hunk covers the range", () => {
  const review = build([finding({ line_start: 1, line_end: 3, replacement: "a\nb" })]);
  const [c] = review.comments;
  assert.equal(c.start_line, 1);
  assert.equal(c.line, 3);
  assert.ok(c.body.endsWith("```suggestion\na\nb\n```"));
});

Deno.test("a replacement on a range that is not fully commentable gets no block", () => {
  const review = build([finding({ line_start: 4, line_end: 20, replacement: "x" })]);
  assert.equal(review.comments.length, 1);
  assert.equal(review.comments[0].line, 4);
  assert.equal(review.comments[0].start_line, undefined);
  assert.doesNotMatch(review.comments[0].body, /suggestion/);
});

Deno.test("a huge description is cut, and the suggestion block is kept whole", () => {
  const description = "```js\n" + "d".repeat(50_000);
  const review = build([finding({ description, replacement: "fixed" })]);
  const body = review.comments[0].body;
  assert.ok(body.length <= MAX_INLINE_COMMENT_CHARS, `${body.length}`);
  assert.ok(body.endsWith("```suggestion\nfixed\n```"));
  // The cut description's open code block is closed before the suggestion.
  assert.match(body, /…\n```\n\n```suggestion/);
});

Deno.test("a replacement that cannot fit is dropped, never cut", () => {
  const review = build([finding({ replacement: "r".repeat(MAX_INLINE_COMMENT_CHARS) })]);
  const body = review.comments[0].body;
  assert.ok(body.length <= MAX_INLINE_COMMENT_CHARS);
  assert.doesNotMatch(body, /```suggestion/);
  assert.match(body, /too long to show/);
});

Deno.test("minSeverity filters both the inline comments and the body", () => {
  const review = build([
    finding({ severity: "low", line_start: 2, title: "low inline" }),
    finding({ severity: "info", line_start: null, title: "info outside" }),
    finding({ severity: "critical", line_start: 3, title: "crit inline" }),
    finding({ severity: "medium", line_start: null, title: "medium outside" }),
  ], { minSeverity: "medium" });
  assert.deepEqual(review.comments.map((c) => c.line), [3]);
  assert.deepEqual(review.outsideDiff.map((f) => f.title), ["medium outside"]);
  assert.doesNotMatch(review.body, /low inline|info outside/);
});

Deno.test("over maxComments: the most severe stay inline, the rest go to the body", () => {
  const review = build([
    finding({ severity: "low", line_start: 1, title: "l1" }),
    finding({ severity: "critical", line_start: 22, title: "c22" }),
    finding({ severity: "medium", line_start: 2, title: "m2" }),
    finding({ severity: "critical", file_path: "src/b.ts", line_start: 1, title: "cb1" }),
  ], { maxComments: 3 });
  // Ordered by file, then line.
  assert.deepEqual(review.comments.map((c) => `${c.path}:${c.line}`), [
    "src/a.ts:2",
    "src/a.ts:22",
    "src/b.ts:1",
  ]);
  assert.deepEqual(review.outsideDiff.map((f) => f.title), ["l1"]);
  assert.match(review.body, /comment limit reached/);
});

Deno.test("the default limit is 50 inline comments", () => {
  const many = Array.from({ length: 60 }, () => finding({}));
  const review = build(many);
  assert.equal(review.comments.length, 50);
  assert.equal(review.outsideDiff.length, 10);
});

Deno.test("the marker round-trips and a stranger's text does not parse", () => {
  const review = build([]);
  assert.ok(
    review.body.startsWith(`${INLINE_REVIEW_MARKER} head=0123456789abcdef review=r1 -->\n`),
  );
  assert.deepEqual(parseInlineReviewMarker(review.body), {
    headSha: "0123456789abcdef",
    reviewId: "r1",
  });
  const odd = { headSha: "a b-->c", reviewId: "r\n%1 -->" };
  const marker = inlineReviewMarker(odd.headSha, odd.reviewId);
  assert.equal(marker.split("\n").length, 1);
  assert.equal(marker.indexOf("-->"), marker.length - 3);
  assert.deepEqual(parseInlineReviewMarker(`${marker}\nbody`), odd);
  for (
    const stranger of [
      null,
      undefined,
      "",
      "LGTM!",
      "<!-- ai-code-review:v1 -->",
      `Quoting you:\n${inlineReviewMarker("abc", "r1")}`,
      `${INLINE_REVIEW_MARKER} head=abc -->`,
      `${INLINE_REVIEW_MARKER} head=%E0%A4%A review=r1 -->`,
    ]
  ) assert.equal(parseInlineReviewMarker(stranger), null, String(stranger));
});

Deno.test("property: the marker round-trips any head and review id", () => {
  fc.assert(fc.property(fc.string(), fc.string(), (headSha, reviewId) => {
    assert.deepEqual(parseInlineReviewMarker(inlineReviewMarker(headSha, reviewId)), {
      headSha,
      reviewId,
    });
  }));
});

Deno.test("10,000 findings outside the diff keep the body under the limit", () => {
  const findings = Array.from({ length: 10_000 }, (_, i) =>
    finding({
      file_path: `f${i}.ts`,
      line_start: i,
      title: "t".repeat(500),
      description: "x\n".repeat(1_000),
    }));
  const review = build(findings);
  assert.ok(review.body.length <= MAX_COMMENT_CHARS, `${review.body.length}`);
  assert.equal(review.outsideDiff.length, 10_000);
  const shown = review.body.split("\n").filter((l) => l.startsWith("- ")).length;
  assert.ok(shown > 10);
  assert.match(review.body, new RegExp(`…and ${10_000 - shown} more\\.$`));
});

Deno.test("output is deterministic whatever the input order", () => {
  const findings = [
    finding({ line_start: 3, title: "a" }),
    finding({ line_start: 2, title: "b" }),
    finding({ file_path: "src/b.ts", line_start: 1, title: "c" }),
    finding({ line_start: null, title: "d" }),
    finding({ line_start: 10, severity: "critical", title: "e" }),
  ];
  const one = build(findings);
  const two = build([...findings].reverse());
  assert.deepEqual(one, two);
  assert.deepEqual(one.comments.map((c) => `${c.path}:${c.line}`), [
    "src/a.ts:2",
    "src/a.ts:3",
    "src/b.ts:1",
  ]);
  assert.deepEqual(one.outsideDiff.map((f) => f.title), ["e", "d"]);
});

/** A random one-file diff: hunks of "+", "-" and " " lines separated by gaps. */
const diffArb = fc.array(
  fc.record({
    gap: fc.integer({ min: 0, max: 5 }),
    ops: fc.array(fc.constantFrom("+", "-", " "), { minLength: 1, maxLength: 8 }),
  }),
  { minLength: 0, maxLength: 4 },
).map((hunks) => {
  const out = ["diff --git a/f.ts b/f.ts", "--- a/f.ts", "+++ b/f.ts"];
  let oldLine = 1;
  let newLine = 1;
  for (const { gap, ops } of hunks) {
    oldLine += gap;
    newLine += gap;
    const olds = ops.filter((o) => o !== "+").length;
    const news = ops.filter((o) => o !== "-").length;
    out.push(`@@ -${oldLine},${olds} +${newLine},${news} @@`, ...ops.map((o, i) => `${o}l${i}`));
    oldLine += olds;
    newLine += news;
  }
  return out.join("\n") + "\n";
});

const severityArb = fc.constantFrom<Severity>("critical", "high", "medium", "low", "info");
const findingArb = fc.record({
  severity: severityArb,
  file_path: fc.constantFrom("f.ts", "g.ts"),
  line_start: fc.option(fc.integer({ min: -1, max: 40 }), { nil: null }),
  line_end: fc.option(fc.integer({ min: -1, max: 45 }), { nil: undefined }),
  title: fc.string(),
  description: fc.string(),
  replacement: fc.option(fc.string(), { nil: undefined }),
  agent_type: fc.constant("x"),
});

Deno.test("property: every inline comment is on commentable lines within one hunk", () => {
  fc.assert(fc.property(
    diffArb,
    fc.array(findingArb, { maxLength: 12 }),
    severityArb,
    fc.integer({ min: 0, max: 8 }),
    (diff, findings, minSeverity, maxComments) => {
      const lines = commentableLines(diff);
      // Every added line is commentable.
      for (const file of splitDiff(diff)) {
        for (const { line } of addedLines(file.text)) assert.ok(lines.get(file.path)!.has(line));
      }
      const review = buildInlineReview({
        findings,
        diff,
        headSha: "h",
        reviewId: "r",
        minSeverity,
        maxComments,
      });
      assert.ok(review.comments.length <= maxComments);
      for (const c of review.comments) {
        const file = lines.get(c.path);
        assert.ok(file?.has(c.line));
        if (c.start_line !== undefined) {
          assert.ok(c.start_line < c.line);
          assert.equal(c.start_side, "RIGHT");
          for (let l = c.start_line; l <= c.line; l++) {
            assert.equal(file!.get(l), file!.get(c.line));
          }
        }
        assert.ok(c.body.length <= MAX_INLINE_COMMENT_CHARS);
      }
      const order = ["critical", "high", "medium", "low", "info"];
      const eligible = findings.filter((f) =>
        order.indexOf(f.severity) <= order.indexOf(minSeverity)
      );
      assert.equal(review.comments.length + review.outsideDiff.length, eligible.length);
      assert.ok(review.body.startsWith(inlineReviewMarker("h", "r")));
    },
  ));
});
