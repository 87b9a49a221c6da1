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

Deno.test("the comment starts with the marker and names the head", () => {
  const body = formatReviewComment({ ...base, findings: [], summary: "All good." });
  assert.ok(body.startsWith(`${REVIEW_COMMENT_MARKER}\n`));
  assert.match(body, /`0123456`/);
  assert.match(body, /No findings\./);
  assert.match(body, /All good\./);
  assert.match(body, /review r-1/);
});

Deno.test("findings are ordered by severity, file, line and escaped", () => {
  const body = formatReviewComment({
    ...base,
    findings: [
      finding({ severity: "info", file_path: "b.ts", title: "later" }),
      finding({ severity: "critical", file_path: "z.ts", title: "a | b\nc" }),
      finding({ severity: "medium", file_path: "a.ts", line_start: 9, title: "m9" }),
      finding({ severity: "medium", file_path: "a.ts", line_start: 2, title: "m2" }),
    ],
  });
  const rows = body.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| Severity"));
  assert.deepEqual(rows.map((r) => r.split(" | ")[0]), [
    "| critical",
    "| medium",
    "| medium",
    "| info",
  ]);
  assert.ok(rows[1].includes("m2") && rows[2].includes("m9"));
  assert.ok(rows[0].includes("a \\| b c"));
  assert.match(body, /4 findings \(1 critical, 2 medium, 1 info\)/);
});

Deno.test("5000 findings stay under the limit and say how many were left out", () => {
  const findings = Array.from(
    { length: 5000 },
    (_, i) => finding({ file_path: `f${i}.ts`, description: "x".repeat(200) }),
  );
  const body = formatReviewComment({ ...base, findings });
  assert.ok(body.length <= MAX_COMMENT_CHARS, `${body.length}`);
  const shown = body.split("\n").filter((l) => l.startsWith("| info")).length;
  assert.ok(shown > 10);
  assert.match(body, new RegExp(`and ${5000 - shown} more findings not shown`));
});
