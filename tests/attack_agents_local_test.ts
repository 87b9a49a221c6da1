/**
 * Attacks on the built-in local reviewer: pathological diffs (long lines of repeated characters
 * in every file type, unterminated and escaped quotes next to SQL keywords), timed. The reviewer
 * runs synchronously on the service's event loop, so its time is every other review's latency,
 * every lease renewal's and every HTTP answer's.
 */
import assert from "node:assert/strict";
import type { AgentEvent } from "../review/agents/agent.ts";
import { createLocalAgent } from "../review/agents/local.ts";

/** A diff adding `lines` copies of `text` to `path`, at most `maxBytes` long. */
function diffOf(path: string, text: string, maxBytes = 2 * 1024 * 1024): string {
  const head =
    `diff --git a/${path} b/${path}\nnew file mode 100644\n--- /dev/null\n+++ b/${path}\n`;
  const line = `+${text}\n`;
  const lines = Math.max(1, Math.floor((maxBytes - head.length - 30) / line.length));
  return `${head}@@ -0,0 +1,${lines} @@\n${line.repeat(lines)}`;
}

async function timeReview(diff: string) {
  const events: AgentEvent[] = [];
  const started = performance.now();
  await createLocalAgent().review({
    reviewId: "r",
    attempt: 1,
    repo: "o/r",
    pullNumber: 1,
    headSha: "h",
    baseSha: "b",
    title: "t",
    diff,
    files: [],
  }, { signal: new AbortController().signal, emit: (e) => events.push(e), fetch, log: () => {} });
  return { ms: performance.now() - started, events };
}

Deno.test("attack local: a MAX_DIFF_BYTES diff of SQL lines with escaped quotes reviews in bounded time", async () => {
  // `SELECT "\"\"\"…` (10 000 characters, the per-line bound): the string-literal pattern restarts
  // at every quote and scans to the end of the line each time, quadratic in the line.
  const text = `SELECT "${'\\"'.repeat(4_995)}`;
  const small = await timeReview(diffOf("src/db.js", text, 100_000));
  const { ms, events } = await timeReview(diffOf("src/db.js", text));
  assert.equal(events.at(-1)?.type, "done");
  assert.ok(
    ms < 2_000,
    `the local reviewer blocked the event loop for ${Math.round(ms)} ms on a 2 MiB diff ` +
      `(${Math.round(small.ms)} ms for 100 kB)`,
  );
});

Deno.test("attack local (withstood): long lines of repeated characters in every file type stay fast", async () => {
  const patterns = [
    '"'.repeat(10_000),
    "\\".repeat(10_000),
    "a".repeat(10_000),
    " ".repeat(9_999) + "x",
    "password='\\'".repeat(800),
    "eval(".repeat(2_000),
    "exec(".repeat(2_000),
    "SELECT ".repeat(1_400),
    "DELETE ".repeat(1_400),
    "async ".repeat(1_600) + "x",
    "f()" + ":".repeat(9_990),
    "sql`${".repeat(1_500),
    "a".repeat(9_990) + "token",
    "ghp_".repeat(2_500),
    "sk-".repeat(3_300),
    'token="'.repeat(1_400),
    "'".repeat(5_000) + '"'.repeat(5_000),
    "# TODO ".repeat(1_400),
    "<!-- ".repeat(2_000),
  ];
  for (const path of ["a.js", "a.py", "a.go", "a.yml", "README.md", ".env"]) {
    for (const text of patterns) {
      const { ms } = await timeReview(diffOf(path, text, 100_000));
      assert.ok(ms < 500, `${path} ${JSON.stringify(text.slice(0, 12))}…: ${Math.round(ms)} ms`);
    }
  }
});
