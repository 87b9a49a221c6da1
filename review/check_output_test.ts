import assert from "node:assert/strict";
import type { Finding, Severity } from "../kv/records.ts";
import {
  annotationBatches,
  type CheckAnnotation,
  checkAnnotations,
  checkConclusion,
  checkOutput,
  MAX_CHECK_SUMMARY_CHARS,
  statusDescription,
} from "./check_output.ts";

const DIFF = [
  "diff --git a/a.ts b/a.ts",
  "@@ -1,2 +1,3 @@",
  " one",
  "+two",
  " three",
  "@@ -10,1 +11,2 @@",
  " eleven",
  "+twelve",
  "",
].join("\n");

const finding = (over: Partial<Finding>): Finding => ({
  severity: "info",
  file_path: "a.ts",
  line_start: 2,
  title: "t",
  description: "d",
  agent_type: "style",
  ...over,
});

Deno.test("annotation levels follow severity, most severe first", () => {
  const severities: Severity[] = ["info", "low", "critical", "medium", "high"];
  const annotations = checkAnnotations(
    severities.map((severity) => finding({ severity, title: severity })),
    DIFF,
  );
  assert.deepEqual(annotations.map((a) => [a.title, a.annotation_level]), [
    ["critical", "failure"],
    ["high", "failure"],
    ["medium", "warning"],
    ["low", "warning"],
    ["info", "notice"],
  ]);
  assert.deepEqual(
    { ...annotations[0], title: undefined, annotation_level: undefined },
    {
      path: "a.ts",
      start_line: 2,
      end_line: 2,
      title: undefined,
      annotation_level: undefined,
      message: "d",
    },
  );
});

Deno.test("annotations only for commentable lines; ranges stay in one hunk", () => {
  const annotations = checkAnnotations([
    finding({ line_start: 1, line_end: 3, title: "range" }),
    finding({ line_start: 3, line_end: 12, title: "across" }),
    finding({ line_start: 5, title: "between" }),
    finding({ line_start: null, title: "file" }),
    finding({ file_path: "b.ts", line_start: 1, title: "elsewhere" }),
  ], DIFF);
  assert.deepEqual(annotations.map((a) => [a.title, a.start_line, a.end_line]), [
    ["range", 1, 3],
    ["across", 3, 3],
  ]);
});

Deno.test("annotation title and message are bounded", () => {
  const [a] = checkAnnotations(
    [finding({ title: "t\n".repeat(1_000), description: "d".repeat(100_000), suggestion: "s" })],
    DIFF,
  );
  assert.ok(a.title.length <= 255);
  assert.ok(!a.title.includes("\n"));
  assert.ok(a.message.length <= 60_000);
  const [b] = checkAnnotations([finding({ suggestion: "Use x." })], DIFF);
  assert.equal(b.message, "d\n\nSuggestion: Use x.");
});

Deno.test("batches of 50: 120 annotations → 50, 50, 20", () => {
  const annotations: CheckAnnotation[] = Array.from({ length: 120 }, (_, i) => ({
    path: "a.ts",
    start_line: i + 1,
    end_line: i + 1,
    annotation_level: "notice",
    title: `${i}`,
    message: "m",
  }));
  const batches = annotationBatches(annotations);
  assert.deepEqual(batches.map((b) => b.length), [50, 50, 20]);
  assert.deepEqual(batches.flat(), annotations);
  assert.deepEqual(annotationBatches([]), []);
  assert.deepEqual(annotationBatches(annotations.slice(0, 5), 2).map((b) => b.length), [2, 2, 1]);
});

Deno.test("conclusions: success, neutral, failure", () => {
  const low = finding({ severity: "low" });
  const high = finding({ severity: "high" });
  assert.equal(checkConclusion({ findings: [], threshold: "high", failed: false }), "success");
  assert.equal(checkConclusion({ findings: [low], threshold: "high", failed: false }), "success");
  assert.equal(
    checkConclusion({ findings: [low, high], threshold: "high", failed: false }),
    "neutral",
  );
  assert.equal(checkConclusion({ findings: [low], threshold: "low", failed: false }), "neutral");
  assert.equal(checkConclusion({ findings: [], threshold: "info", failed: true }), "failure");
});

Deno.test("checkOutput for a failed review gives the reason and /review", () => {
  const out = checkOutput({ findings: [], failedBecause: "The agent timed out." });
  assert.equal(out.title, "Review failed");
  assert.match(out.summary, /The agent timed out\./);
  assert.match(out.summary, /`\/review`/);
});

Deno.test("checkOutput counts, summary, configuration problems and what was left out", () => {
  const out = checkOutput({
    findings: [finding({ severity: "high" }), finding({}), finding({})],
    summary: "Looks mostly fine.",
    leftOut: ["vendor/big.js (too large)"],
    configProblems: ["`.ai-review.yml`: unknown key `foo`"],
  });
  assert.equal(out.title, "3 findings (1 high, 2 info)");
  assert.match(out.summary, /\| high \| 1 \|/);
  assert.match(out.summary, /\| critical \| 0 \|/);
  assert.match(out.summary, /Looks mostly fine\./);
  assert.match(out.summary, /- vendor\/big\.js \(too large\)/);
  assert.match(out.summary, /unknown key `foo`/);
  assert.doesNotMatch(out.summary, /\/review/);
  assert.equal(checkOutput({ findings: [] }).title, "No findings");
});

Deno.test("checkOutput stays under the limit", () => {
  const out = checkOutput({
    findings: [],
    summary: "```\n" + "s".repeat(100_000),
    leftOut: Array.from({ length: 5_000 }, (_, i) => `file${i}.ts ${"x".repeat(100)}`),
    configProblems: ["p\n".repeat(50_000)],
    failedBecause: "r".repeat(100_000),
  });
  assert.ok(out.summary.length <= MAX_CHECK_SUMMARY_CHARS, `${out.summary.length}`);
  assert.match(out.summary, /…and \d+ more/);
  assert.match(out.summary, /`\/review`/);
});

Deno.test("statusDescription stays within 140 characters", () => {
  assert.equal(statusDescription({ findings: [] }), "No findings");
  assert.equal(
    statusDescription({ findings: [finding({ severity: "critical" }), finding({})] }),
    "2 findings (1 critical, 1 info)",
  );
  const failed = statusDescription({ findings: [], failedBecause: "x\n".repeat(500) });
  assert.ok(failed.length <= 140, `${failed.length}`);
  assert.match(failed, /^Failed: x x/);
  assert.match(failed, /\/review/);
  assert.equal(
    statusDescription({ findings: [], failedBecause: "Agent timed out." }),
    "Failed: Agent timed out. Comment /review to retry.",
  );
});
