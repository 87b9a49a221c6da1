/**
 * Start-up mistakes get one clear line and exit code 2 (no stack trace), and `dev` ends its
 * start-up with what to do next. Each runs the real `main.ts` as a process.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

async function runMain(env: Record<string, string>, args: string[] = [], waitFor?: RegExp) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "main.ts",
      ...args,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1", GITHUB_WEBHOOK_SECRET: "s", BACKEND_AUTH_TOKEN: "t", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  if (waitFor) {
    // A service that started: read stdout until the pattern shows, then stop it.
    let text = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!waitFor.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    child.kill("SIGTERM");
    await reader.cancel();
    const status = await child.status;
    await child.stderr.cancel();
    clearTimeout(timer);
    return { code: status.code, stdout: text, stderr: "" };
  }
  const out = await child.output();
  clearTimeout(timer);
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

function assertOneLine(stderr: string, pattern: RegExp) {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected:\n${stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(stderr, /\n\s+at |Stack backtrace|error: Uncaught/);
}

Deno.test("start-up: a port in use is one clear line and exit code 2", async () => {
  const busy = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const run = await runMain({ PORT: String(port), KV_PATH: ":memory:" });
    assert.equal(run.code, 2);
    assertOneLine(
      run.stderr,
      new RegExp(`^port ${port} is already in use: stop the other process or set PORT`),
    );
  } finally {
    busy.close();
  }
});

Deno.test("start-up: a KV_PATH that cannot be written is one clear line and exit code 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await runMain({ PORT: "0", KV_PATH: `${dir}/missing/dir/kv.sqlite3` });
    assert.equal(run.code, 2);
    assertOneLine(
      run.stderr,
      /^cannot open KV_PATH=.*missing\/dir\/kv\.sqlite3: .*Set KV_PATH to a file in a writable directory\.$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("start-up: AGENT_URL without a scheme is refused with the variable named", async () => {
  const run = await runMain({ PORT: "0", KV_PATH: ":memory:", AGENT_URL: "localhost:8080" });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /AGENT_URL: AGENT_URL must start with http:\/\/ or https:\/\//);
  assert.doesNotMatch(run.stderr, /\n\s+at /);
});

Deno.test("start-up: dev ends with what to do next", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await runMain(
      { PORT: "0", KV_PATH: `${dir}/kv.sqlite3` },
      ["--dev"],
      /README: "Install as a GitHub App"[\s\S]*\n\n/,
    );
    assert.match(run.stdout, /listening on http:\/\/localhost:\d+/);
    assert.match(run.stdout, /Next:\n {2}• See it work without any account: {3}deno task demo/);
    assert.match(run.stdout, /GITHUB_WEBHOOK_SECRET=<a long random string>/);
    assert.match(run.stdout, /webhook URL <public URL>\/webhooks\/github/);
    assert.match(
      run.stdout,
      /Still missing: GITHUB_TOKEN \(or GITHUB_APP_ID \+ GITHUB_APP_PRIVATE_KEY\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
