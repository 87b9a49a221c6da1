import assert from "node:assert/strict";
import type { Finding } from "../kv/records.ts";
import { formatReviewComment, MAX_COMMENT_CHARS, REVIEW_COMMENT_MARKER } from "./comment.ts";

const base = { repo: "octo/app", pullNumber: 4, headSha: "0123456789abcdef", reviewId: "r-1" };
const finding = (over: Partial<Finding>): Finding => ({
  severity: "info",
  file_path: "src/a.ts",
  line_start: 1,
  title: "t",
  description: "d",
  agent_type: "style",
  ...over,
});
const tableRows = (body: string) =>
  body.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| Severity"));

Deno.test("the comment starts with the marker and names the head", () => {
  const body = formatReviewComment({ ...base, findings: [], summary: "All good." });
  assert.equal(body.split("\n")[0], REVIEW_COMMENT_MARKER);
  assert.ok(body.startsWith(`${REVIEW_COMMENT_MARKER}\n`));
  assert.match(body, /^## /m);
  assert.match(body, /`0123456`/);
  assert.doesNotMatch(body, /01234567/);
  assert.match(body, /octo\/app#4/);
  assert.match(body, /All good\./);
  assert.match(body, /review r-1/);
});

Deno.test("no findings: says so, and no table", () => {
  const body = formatReviewComment({ ...base, findings: [] });
  assert.match(body, /No findings\./);
  assert.doesNotMatch(body, /\| Severity \|/);
  assert.doesNotMatch(body, /not shown/);
});

Deno.test("findings are ordered by severity, file, line and escaped", () => {
  const body = formatReviewComment({
    ...base,
    findings: [
      finding({ severity: "info", file_path: "b.ts", title: "later" }),
      finding({ severity: "low", file_path: "a.ts", title: "low" }),
      finding({ severity: "critical", file_path: "z.ts", title: "a | b\nc" }),
      finding({ severity: "medium", file_path: "a.ts", line_start: 9, title: "m9" }),
      finding({ severity: "high", file_path: "q.ts", line_start: 1, title: "h" }),
      finding({ severity: "medium", file_path: "a.ts", line_start: 2, title: "m2" }),
      finding({ severity: "medium", file_path: "0.ts", line_start: 50, title: "m0" }),
      finding({ severity: "medium", file_path: "a.ts", line_start: null, title: "mfile" }),
    ],
  });
  assert.match(body, /\| Severity \| File \| Line \| Finding \|/);
  const rows = tableRows(body);
  assert.deepEqual(rows.map((r) => r.split(" | ")[0]), [
    "| critical",
    "| high",
    "| medium",
    "| medium",
    "| medium",
    "| medium",
    "| low",
    "| info",
  ]);
  assert.deepEqual(rows.slice(2, 6).map((r) => r.match(/\*\*(\w+)\*\*/)?.[1]), [
    "m0",
    "mfile",
    "m2",
    "m9",
  ]);
  assert.ok(rows[0].includes("a \\| b c"));
  assert.match(body, /8 findings \(1 critical, 1 high, 4 medium, 1 low, 1 info\)/);
});

Deno.test("pipes and newlines never break a table row", () => {
  const body = formatReviewComment({
    ...base,
    findings: [finding({
      file_path: "weird|name\r\n.ts",
      title: "x|y",
      description: "line1\nline2\r\nline3\rline4 | end",
      suggestion: "do\n| this",
    })],
  });
  const rows = tableRows(body);
  assert.equal(rows.length, 1);
  // Exactly the 5 unescaped pipes that delimit 4 cells.
  assert.equal(rows[0].match(/(?<!\\)\|/g)?.length, 5);
  assert.ok(rows[0].includes("line1 line2 line3 line4 \\| end"));
  assert.ok(rows[0].includes("`weird\\|name .ts`"));
});

Deno.test("5000 findings stay under the limit and say how many were left out", () => {
  const findings = Array.from(
    { length: 5000 },
    (_, i) => finding({ file_path: `f${i}.ts`, description: "x".repeat(200) }),
  );
  const body = formatReviewComment({ ...base, findings, summary: "s".repeat(50_000) });
  assert.ok(body.length <= MAX_COMMENT_CHARS, `${body.length}`);
  assert.ok(body.startsWith(`${REVIEW_COMMENT_MARKER}\n`));
  const shown = tableRows(body).length;
  assert.ok(shown > 10);
  assert.match(body, new RegExp(`and ${5000 - shown} more findings not shown`));
  assert.match(body, /5000 findings \(5000 info\)/);
  assert.match(body, /review r-1/);
});

Deno.test("huge fields in every finding still keep the body under the limit", () => {
  const huge = "|\n".repeat(30_000);
  const findings = Array.from({ length: 300 }, (_, i) =>
    finding({
      severity: i % 2 ? "critical" : "low",
      file_path: huge,
      title: huge,
      description: huge,
      suggestion: huge,
    }));
  const body = formatReviewComment({ ...base, findings, reviewId: huge });
  assert.ok(body.length <= MAX_COMMENT_CHARS, `${body.length}`);
  const shown = tableRows(body).length;
  assert.match(body, new RegExp(`and ${300 - shown} more findings not shown`));
  assert.ok(tableRows(body).every((r) => r.startsWith("| critical")));
});
