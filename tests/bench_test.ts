/**
 * `deno task bench --quick` (about 50 reviews per section) as a test, so the benchmark cannot rot:
 * it must run every section against the real server and end with one JSON line holding every
 * figure as a finite number.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

/** The figures issue 16 asks `deno task bench` for. */
const FIGURES = [
  "ingest_rps",
  "ingest_p99_ms",
  "ingest_ratio",
  "dispatch_p50_ms",
  "dispatch_p99_ms",
  "dispatch_cross_p50_ms",
  "drain_rps",
  "kv_commits_per_review",
  "isolation_ratio",
  "rss_mb_2k",
  "rss_mb_20k",
  "ack_p99_under_drain_ms",
];

Deno.test({
  name: "deno task bench --quick ends with one JSON line holding every figure",
  // The bench spawns its own servers; their sockets and processes are closed before it exits.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const task = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.bench as string;
    assert.match(task, /bench\/run\.ts/, "deno task bench runs bench/run.ts");
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "bench/run.ts", "--quick"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `bench failed:\n${stderr.slice(-3000)}`);
    const lines = stdout.trimEnd().split("\n");
    const last = JSON.parse(lines.at(-1)!);
    for (const name of FIGURES) {
      assert.equal(typeof last[name], "number", `${name} missing: ${lines.at(-1)}`);
      assert.ok(Number.isFinite(last[name]), `${name} is ${last[name]}`);
    }
    assert.ok(last.ingest_rps > 0 && last.drain_rps > 0 && last.rss_mb_2k > 0);
    assert.equal(last.quick, true);
    // The readable table comes before it, one row per figure.
    assert.match(stdout, /^figure\s+value/m);
    assert.match(stdout, /^ingest_ratio\s/m);
  },
});
