/**
 * `deno task demo` as a user runs it: a subprocess that starts the real service against the GitHub
 * stand-in, reviews 9 pull requests of two owners and ends by itself; and `--keep`, which stays up
 * until Ctrl-C (SIGINT) and then stops cleanly.
 */
import assert from "node:assert/strict";
import { runDemo } from "../cli/demo.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TIMEOUT_MS = 90_000;

/** `deno task demo <args>` with piped output (the parent environment is kept). */
function spawnDemo(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["task", "demo", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Sends `signal` unless the process is gone. */
function kill(child: Deno.ChildProcess, signal: Deno.Signal) {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}

/** Output and status of `child`; SIGINT at `timeoutMs` (the demo cleans up), SIGKILL 10 s on. */
async function finish(child: Deno.ChildProcess, timeoutMs = TIMEOUT_MS) {
  const interrupt = setTimeout(() => kill(child, "SIGINT"), timeoutMs);
  const killer = setTimeout(() => kill(child, "SIGKILL"), timeoutMs + 10_000);
  try {
    const { code, stdout, stderr } = await child.output();
    const dec = new TextDecoder();
    return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
  } finally {
    clearTimeout(interrupt);
    clearTimeout(killer);
  }
}

Deno.test("deno task demo reviews every pull request and ends by itself", async () => {
  const started = Date.now();
  const { code, stdout, stderr } = await finish(spawnDemo(["--port", "0"]));
  const context = `stdout:\n${stdout}\nstderr:\n${stderr}`;
  assert.equal(code, 0, context);
  assert.ok(Date.now() - started < TIMEOUT_MS, context);

  // Every review line: `+0.43s  4d3c72e5  acme/api#101        pending → running  …`.
  const lines = [...stdout.matchAll(/^\s*\+[\d.]+s\s+([0-9a-f]{8})\s+(\S+#\d+)\s+(.*)$/gm)];
  const ids = new Set(lines.map((m) => m[1]));
  assert.equal(ids.size, 9, context);
  const waited = [...ids].filter((id) => {
    const mine = lines.filter((m) => m[1] === id).map((m) => m[3]);
    return mine[0].trim() === "pending" && mine.some((text) => /→ running/.test(text));
  });
  assert.ok(waited.length >= 1, `no review waited (pending, then running)\n${context}`);
  for (const id of ids) {
    assert.ok(
      lines.some((m) => m[1] === id && /→ completed/.test(m[3])),
      `review ${id} never completed\n${context}`,
    );
  }
  // Both owners, their slots full at the start with reviews waiting.
  assert.match(stdout, /slots\s+acme: 2\/2 running, [1-9] waiting/, context);
  assert.match(stdout, /slots\s+mona: /, context);
  assert.match(stdout, /9 of 9 reviews completed for 2 owners in [\d.]+ s/, context);
  // The posted comment, with its findings.
  assert.match(stdout, /comment posted on acme\/api#101/, context);
  assert.match(stdout, /\| critical \| `src\/handler\.js` \| 3 \| \*\*`eval\(\)`/, context);
  assert.match(stdout, /Hard-coded AWS access key id/, context);
  assert.doesNotMatch(stdout, /AKIAIOSFODNN7EXAMPLE/, "the comment quotes the key masked");
  assert.match(stdout, /http:\/\/localhost:\d+\/login#token=[0-9a-f]{32}/, context);
  assert.match(stdout, /BACKEND_AUTH_TOKEN=[0-9a-f]{32} deno task reviews --url http/, context);
  // The service's JSON logs stay out of the output (`--verbose` shows them).
  assert.doesNotMatch(stdout, /^\{"time"/m, context);
});

Deno.test("deno task demo --keep stays up until SIGINT, then stops cleanly", async () => {
  const child = spawnDemo(["--keep", "--port", "0"]);
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const killer = setTimeout(() => kill(child, "SIGKILL"), TIMEOUT_MS);
  let text = "";
  const readUntil = async (done: () => boolean) => {
    while (!done()) {
      const chunk = await reader.read();
      if (chunk.done) return;
      text += chunk.value;
    }
  };
  try {
    await readUntil(() => text.includes("press Ctrl-C"));
    const url = text.match(/Dashboard: (http:\/\/localhost:\d+)\/login#token=/)?.[1];
    assert.ok(url, `no dashboard URL in:\n${text}`);
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();

    kill(child, "SIGINT");
    await readUntil(() => false);
    const { code } = await child.status;
    assert.equal(code, 0, `${text}\n${await stderr}`);
    assert.match(text, /Stopping the service/);
    // Stopped: nothing answers there any more.
    await assert.rejects(fetch(`${url}/health`));
  } finally {
    kill(child, "SIGINT");
    await readUntil(() => false).catch(() => {});
    await child.status;
    await stderr;
    clearTimeout(killer);
  }
});

Deno.test("runDemo says which reviews were still open when its bound passed, and fails", async () => {
  const lines: string[] = [];
  // A slow GitHub stand-in: no review can finish inside the bound.
  const code = await runDemo({
    keep: false,
    port: 0,
    out: (line) => lines.push(line),
    timeoutMs: 1_000,
    latencyMs: 2_000,
  });
  const text = lines.join("\n");
  assert.equal(code, 1, text);
  assert.match(text, /demo failed: reviews still open after 1 s: acme\/api#101 /, text);
  assert.doesNotMatch(text, /login#token=/, text);
});
