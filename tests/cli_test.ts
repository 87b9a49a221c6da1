/**
 * `deno task reviews`: every command through the real service (harness), run in-process with
 * captured output, its exit codes, and once as the real task in a subprocess.
 */
import assert from "node:assert/strict";
import { run } from "../cli/reviews.ts";
import type { ReviewRecord } from "../kv/records.ts";
import { type AgentScript, holdFirstSession, reviewScript } from "./fakes/agent.ts";
import { BACKEND_TOKEN, type Harness, sha, waitFor, withHarness } from "./harness.ts";

interface Ran {
  code: number;
  out: string;
  err: string;
  /** Requests the CLI sent (method and URL). */
  requests: string[];
}

/** Runs the CLI against `url` with the harness token unless `env` says otherwise. */
async function cli(
  url: string,
  args: string[],
  env: Record<string, string | undefined> = { BACKEND_AUTH_TOKEN: BACKEND_TOKEN },
): Promise<Ran> {
  const ran: Ran = { code: -1, out: "", err: "", requests: [] };
  ran.code = await run(["--url", url, ...args], {
    env,
    stdout: (s) => ran.out += s,
    stderr: (s) => ran.err += s,
    fetch: (input, init) => {
      ran.requests.push(`${init?.method ?? "GET"} ${input}`);
      return fetch(input, init);
    },
  });
  return ran;
}

/** One line on stderr, nothing on stdout, no stack trace. */
function assertOneErrorLine(ran: Ran, pattern: RegExp) {
  assert.equal(ran.out, "", `stdout must stay empty, got ${ran.out}`);
  assert.equal(ran.err.trimEnd().split("\n").length, 1, ran.err);
  assert.match(ran.err.trimEnd(), pattern);
  assert.doesNotMatch(ran.err, /\n\s+at /);
}

/** The table row that holds `needle`, split on runs of 2+ spaces. */
function row(table: string, needle: string): string[] {
  const line = table.split("\n").find((l) => l.includes(needle));
  assert.ok(line, `no row with ${needle} in\n${table}`);
  return line.split(/ {2,}/);
}

/** Reviews for owners 7 (completed) and 8 (failed: its agent answers 400, one attempt). */
const failOwner8: AgentScript = (s, ctl) =>
  s.body.repo.startsWith("owner8/")
    ? new Response("bad request", { status: 400 })
    : reviewScript()(s, ctl);

async function twoReviews(h: Harness): Promise<{ done: string; failed: string }> {
  const done = (await h.openPull(7, 1)).body.reviewId as string;
  const failed = (await h.openPull(8, 2)).body.reviewId as string;
  await h.waitForStatus(done, ["completed"]);
  await h.waitForStatus(failed, ["failed"]);
  return { done, failed };
}

Deno.test("list: an aligned table, --json, and the --status, --owner, --repo filters", async () => {
  await withHarness("kv-queue", { script: failOwner8, env: { MAX_ATTEMPTS: "1" } }, async (h) => {
    const { done, failed } = await twoReviews(h);

    const all = await cli(h.url, ["list"]);
    assert.equal(all.code, 0, all.err);
    assert.equal(all.err, "");
    const lines = all.out.trimEnd().split("\n");
    assert.deepEqual(lines[0].split(/ {2,}/), [
      "ID",
      "REPO",
      "PR",
      "HEAD",
      "STATUS",
      "ATTEMPTS",
      "WAIT",
      "DURATION",
      "PROGRESS/ERROR",
    ]);
    // Newest first; columns aligned: STATUS starts at the same offset on every line.
    assert.equal(lines.length, 3);
    assert.ok(lines[1].startsWith(failed) && lines[2].startsWith(done));
    const at = lines[0].indexOf("STATUS");
    assert.deepEqual(lines.slice(1).map((l) => l.slice(at).split(" ")[0]), ["failed", "completed"]);
    const ok = row(all.out, done);
    assert.deepEqual(ok.slice(0, 6), [
      done,
      "owner7/service",
      "#1",
      sha(1).slice(0, 7),
      "completed",
      "1",
    ]);
    assert.match(ok[6], /^\d+(ms|s)$/, "queue wait");
    assert.match(ok[7], /^\d+(ms|s)$/, "duration");
    const bad = row(all.out, failed);
    assert.equal(bad[4], "failed");
    const record = await h.review(failed);
    assert.ok(record.errorMessage, "the failed review has an error message");
    assert.equal(bad[8], record.errorMessage!.replace(/\s+/g, " ").slice(0, 80).trim());

    const json = await cli(h.url, ["list", "--json"]);
    assert.equal(json.code, 0);
    const page = JSON.parse(json.out) as { reviews: ReviewRecord[]; cursor: string | null };
    assert.deepEqual(page.reviews.map((r) => r.id), [failed, done]);
    assert.equal(page.cursor, null);

    const onlyFailed = await cli(h.url, ["list", "--status", "failed"]);
    assert.match(onlyFailed.out, new RegExp(failed));
    assert.doesNotMatch(onlyFailed.out, new RegExp(done));
    assert.ok(onlyFailed.requests[0].endsWith("/reviews?status=failed&limit=20"));
    assert.equal((await cli(h.url, ["list", "--status", "running"])).out, "no reviews\n");

    const byOwner = JSON.parse((await cli(h.url, ["list", "--owner", "org:7", "--json"])).out);
    assert.deepEqual(byOwner.reviews.map((r: ReviewRecord) => r.id), [done]);
    const bareId = JSON.parse((await cli(h.url, ["list", "--owner", "8", "--json"])).out);
    assert.deepEqual(bareId.reviews.map((r: ReviewRecord) => r.id), [failed]);
    const byRepo = JSON.parse(
      (await cli(h.url, ["list", "--repo", "owner8/service", "--json"])).out,
    );
    assert.deepEqual(byRepo.reviews.map((r: ReviewRecord) => r.id), [failed]);

    // A page with a cursor prints how to get the next one.
    const first = await cli(h.url, ["list", "--limit", "1"]);
    const hint = /--cursor (\S+)/.exec(first.out);
    assert.ok(hint, first.out);
    const next = await cli(h.url, ["list", "--limit", "1", "--cursor", hint[1]]);
    assert.equal(next.code, 0, next.err);
    assert.match(next.out, new RegExp(done));

    // Refused before any request; and a cursor the service refuses (400) is a usage error too.
    for (
      const args of [["--status", "bogus"], ["--owner", "team:1"], ["--repo", "x"], [
        "--limit",
        "0",
      ]]
    ) {
      const ran = await cli(h.url, ["list", ...args]);
      assert.equal(ran.code, 2, args.join(" "));
      assert.deepEqual(ran.requests, []);
      assertOneErrorLine(ran, /^error: /);
    }
    const badCursor = await cli(h.url, ["list", "--cursor", "!!"]);
    assert.equal(badCursor.code, 2);
    assertOneErrorLine(badCursor, /refused \(400\): invalid cursor/);
  });
});

Deno.test("show: fields, findings grouped by severity, events; an unknown id exits 3", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    const id = (await h.openPull(7, 1)).body.reviewId as string;
    await h.waitForStatus(id, ["completed"]);
    const shown = await cli(h.url, ["show", id]);
    assert.equal(shown.code, 0, shown.err);
    const out = shown.out;
    assert.match(out, new RegExp(`^id +${id}$`, "m"));
    assert.match(out, /^repo +owner7\/service$/m);
    assert.match(out, new RegExp(`^head +${sha(1)}$`, "m"));
    assert.match(out, /^status +completed$/m);
    assert.match(out, /^terminalReason +completed$/m);
    assert.match(out, /^attempts +1$/m);
    const record = await h.review(id);
    assert.match(out, new RegExp(`^createdAt +${new Date(record.createdAt).toISOString()}$`, "m"));
    assert.match(out, /^findings \(2\)$/m);
    // Grouped most severe first (the agent's "warning" is medium), each finding with file:line.
    const block = out.slice(out.indexOf("findings ("), out.indexOf("\n\nevents ("));
    assert.deepEqual(block.split("\n"), [
      "findings (2)",
      "  critical (1)",
      "    src/app.ts  Secret in code",
      "      A credential is committed.",
      "  medium (1)",
      "    src/app.ts:2  eval on input",
      "      Evaluating request input runs arbitrary code.",
    ]);

    const events = (await h.api("GET", `/reviews/${id}/events`)).body.events as Array<
      { type: string; message: string }
    >;
    assert.ok(events.length > 0);
    assert.match(out, new RegExp(`^events \\(${events.length}\\)$`, "m"));
    assert.match(out, /^ {2}AT +TYPE +ATTEMPT +MESSAGE$/m);
    for (const e of events) assert.ok(out.includes(e.message.slice(0, 60)), e.message);

    const json = JSON.parse((await cli(h.url, ["show", id, "--json"])).out);
    assert.equal(json.review.id, id);
    assert.equal(json.review.findings.length, 2);
    assert.equal(json.events.events.length, events.length);

    const missing = await cli(h.url, ["show", "nope"]);
    assert.equal(missing.code, 3);
    assertOneErrorLine(missing, /^error: review nope not found$/);
  });
});

Deno.test("cancel: a pending review is cancelled (0), again is a conflict (4), unknown is 3", async () => {
  const held = holdFirstSession();
  await withHarness("kv-queue", {
    script: held.script,
    env: { MAX_CONCURRENT_PER_OWNER: "1" },
  }, async (h) => {
    const running = (await h.openPull(4, 1)).body.reviewId as string;
    await h.waitForStatus(running, ["running"]);
    const waiting = (await h.openPull(4, 2)).body.reviewId as string;
    assert.equal((await h.review(waiting)).status, "pending");

    const cancelled = await cli(h.url, ["cancel", waiting, "--reason", "not needed"]);
    assert.equal(cancelled.code, 0, cancelled.err);
    assert.equal(cancelled.out, `review ${waiting} cancelled\n`);
    assert.deepEqual(cancelled.requests, [`POST ${h.url}/reviews/${waiting}/cancel`]);
    const record = await h.review(waiting);
    assert.equal(record.status, "cancelled");
    assert.match(record.errorMessage ?? "", /not needed/);

    const again = await cli(h.url, ["cancel", waiting]);
    assert.equal(again.code, 4);
    assertOneErrorLine(
      again,
      new RegExp(`cannot cancel review ${waiting}: review already cancelled`),
    );
    const againJson = await cli(h.url, ["cancel", waiting, "--json"]);
    assert.equal(againJson.code, 4);
    assert.equal(JSON.parse(againJson.out).review.status, "cancelled");

    const unknown = await cli(h.url, ["cancel", "nope"]);
    assert.equal(unknown.code, 3);
    assertOneErrorLine(unknown, /^error: review nope not found$/);

    // The running one: cancelled within the service's wait, or still stopping; 0 either way.
    const stop = await cli(h.url, ["cancel", running]);
    assert.equal(stop.code, 0, stop.err);
    assert.match(stop.out, new RegExp(`review ${running} (cancelled|is stopping)`));
    await h.waitForStatus(running, ["cancelled"]);
    held.release();
  });
});

Deno.test("cancel answered 202 (still running, asked to stop) exits 0 with a stopping message", async () => {
  const sent: Array<{ url: string; method?: string; auth: string | null; body: unknown }> = [];
  const ran = { out: "", err: "" };
  const code = await run(["cancel", "r 1", "--reason", "slow"], {
    env: { BACKEND_AUTH_TOKEN: "tok", REVIEWS_URL: "http://svc.test:9/" },
    stdout: (s) => ran.out += s,
    stderr: (s) => ran.err += s,
    fetch: (input, init) => {
      sent.push({
        url: String(input),
        method: init?.method,
        auth: new Headers(init?.headers).get("authorization"),
        body: JSON.parse(String(init?.body)),
      });
      return Promise.resolve(Response.json({ id: "r 1", status: "running" }, { status: 202 }));
    },
  });
  assert.equal(code, 0, ran.err);
  assert.deepEqual(sent, [{
    url: "http://svc.test:9/reviews/r%201/cancel",
    method: "POST",
    auth: "Bearer tok",
    body: { reason: "slow" },
  }]);
  assert.match(ran.out, /^review r 1 is stopping: .*still running\)\n$/);
});

Deno.test("error answers: a 400 with zod's issue list reads as one line (2); a 500 is 1", async () => {
  const answers = [
    Response.json({ error: JSON.stringify([{ path: ["limit"], message: "Too small" }], null, 2) }, {
      status: 400,
    }),
    Response.json({ error: "internal error" }, { status: 500 }),
  ];
  const results: Array<{ code: number; err: string }> = [];
  for (const answer of answers) {
    let err = "";
    const code = await run(["stats"], {
      env: { BACKEND_AUTH_TOKEN: "tok" },
      stdout: () => {},
      stderr: (s) => err += s,
      fetch: () => Promise.resolve(answer),
    });
    results.push({ code, err });
  }
  assert.deepEqual(results, [
    { code: 2, err: "error: refused (400): limit: Too small\n" },
    { code: 1, err: "error: the service answered 500: internal error\n" },
  ]);
});

Deno.test("retry: a failed review gets <id>-retry-1 (0); a completed one is a conflict (4)", async () => {
  let fail = true;
  const script: AgentScript = (s, ctl) =>
    fail ? new Response("bad request", { status: 400 }) : reviewScript()(s, ctl);
  await withHarness("kv-queue", { script, env: { MAX_ATTEMPTS: "1" } }, async (h) => {
    const id = (await h.openPull(3, 5)).body.reviewId as string;
    await h.waitForStatus(id, ["failed"]);
    fail = false;

    const retried = await cli(h.url, ["retry", id]);
    assert.equal(retried.code, 0, retried.err);
    assert.match(
      retried.out,
      new RegExp(`^retry of ${id} created: ${id}-retry-1 \\((pending|queued|running)\\)\\n$`),
    );
    const again = await cli(h.url, ["retry", id, "--json"]);
    assert.equal(again.code, 0);
    assert.equal(JSON.parse(again.out).id, `${id}-retry-1`);

    await h.waitForStatus(`${id}-retry-1`, ["completed"]);
    const completed = await cli(h.url, ["retry", `${id}-retry-1`]);
    assert.equal(completed.code, 4);
    assertOneErrorLine(
      completed,
      /cannot retry review .*-retry-1: review is completed: only failed or cancelled reviews/,
    );
    const unknown = await cli(h.url, ["retry", "nope"]);
    assert.equal(unknown.code, 3);
    assertOneErrorLine(unknown, /^error: review nope not found$/);
  });
});

Deno.test("owners and limit: set, shown with a mark, back to default; bad values exit 2", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    const set = await cli(h.url, ["limit", "org:7", "3"]);
    assert.equal(set.code, 0, set.err);
    assert.equal(set.out, "org:7: limit 3 (its own), 0 active, 0 pending\n");
    assert.deepEqual(set.requests, [`PUT ${h.url}/owners/org/7/limit`]);

    const owners = await cli(h.url, ["owners"]);
    assert.equal(owners.code, 0, owners.err);
    assert.deepEqual(owners.out.split("\n")[0].split(/ {2,}/), [
      "OWNER",
      "SLOTS",
      "PENDING",
      "OLDEST PENDING",
    ]);
    assert.deepEqual(row(owners.out, "org:7"), ["org:7", "0/3*", "0", "-"]);
    assert.match(owners.out, /\* the owner's own limit/);
    const listed = JSON.parse((await cli(h.url, ["owners", "--json"])).out);
    assert.equal(listed.owners[0].limit, 3);
    assert.equal(listed.owners[0].customLimit, true);

    const reset = await cli(h.url, ["limit", "org:7", "default", "--json"]);
    assert.equal(reset.code, 0, reset.err);
    const usage = JSON.parse(reset.out);
    assert.deepEqual([usage.limit, usage.customLimit], [h.config.MAX_CONCURRENT_PER_OWNER, false]);

    for (
      const args of [["org:7", "abc"], ["org:7", "101"], ["org:7", "-1"], ["team:7", "2"], [
        "7",
        "2",
      ]]
    ) {
      const bad = await cli(h.url, ["limit", ...args]);
      assert.equal(bad.code, 2, args.join(" "));
      assert.deepEqual(bad.requests, [], "nothing is sent");
      assertOneErrorLine(bad, /^error: /);
    }
  });
});

Deno.test("stats: totals with a pending review, as text and --json", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    assert.equal((await cli(h.url, ["limit", "org:9", "0"])).code, 0);
    const id = (await h.openPull(9, 1)).body.reviewId as string;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await h.review(id)).status, "pending");

    const text = await cli(h.url, ["stats"]);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^owners with work +1$/m);
    assert.match(text.out, /^pending +1$/m);
    assert.match(text.out, /^oldest pending +\d+(ms|s)$/m);
    assert.match(
      text.out,
      new RegExp(`^default limit +${h.config.MAX_CONCURRENT_PER_OWNER}$`, "m"),
    );
    const stats = JSON.parse((await cli(h.url, ["stats", "--json"])).out);
    assert.equal(stats.pending, 1);
    assert.equal(stats.active, 0);
    assert.equal(typeof stats.oldestPendingMs, "number");

    const owners = await cli(h.url, ["owners"]);
    assert.deepEqual(row(owners.out, "org:9").slice(0, 3), ["org:9 (owner9)", "0/0*", "1"]);
  });
});

Deno.test("errors: unreachable (5), wrong token (6), missing token (2), timeout (5), not JSON (1)", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed = `http://127.0.0.1:${listener.addr.port}`;
  listener.close();
  const down = await cli(closed, ["stats"]);
  assert.equal(down.code, 5);
  assertOneErrorLine(
    down,
    new RegExp(`^error: cannot reach ${closed}: connection refused \\(check --url`),
  );

  await withHarness("kv-queue", {}, async (h) => {
    const wrong = await cli(h.url, ["owners"], { BACKEND_AUTH_TOKEN: "wrong" });
    assert.equal(wrong.code, 6);
    assertOneErrorLine(wrong, /refused the token \(401\)/);
    const missing = await cli(h.url, ["owners"], {});
    assert.equal(missing.code, 2);
    assert.deepEqual(missing.requests, []);
    assertOneErrorLine(missing, /^error: BACKEND_AUTH_TOKEN is not set/);
  });

  // Accepts the connection and never answers.
  const hung = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of hung) held.push(conn);
  })();
  const html = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("<html>proxy</html>", { headers: { "content-type": "text/html" } }),
  );
  try {
    const slow = await cli(`http://127.0.0.1:${(hung.addr as Deno.NetAddr).port}`, [
      "--timeout",
      "0.2",
      "stats",
    ]);
    assert.equal(slow.code, 5);
    assertOneErrorLine(slow, /did not answer within 0\.2 s/);
    const notJson = await cli(`http://127.0.0.1:${html.addr.port}`, ["stats"]);
    assert.equal(notJson.code, 1);
    assertOneErrorLine(notJson, /answered 200 \(text\/html\), not JSON: <html>proxy<\/html>/);
  } finally {
    hung.close();
    for (const conn of held) conn.close();
    await accepting;
    await html.shutdown();
  }
});

Deno.test("--help documents the commands and the exit codes; no command is a usage error", async () => {
  const help = await cli("http://127.0.0.1:9", ["--help"], {});
  assert.equal(help.code, 0);
  for (const command of ["list", "show", "cancel", "retry", "owners", "limit", "stats"]) {
    assert.match(help.out, new RegExp(`^ {2}${command}\\b`, "m"));
  }
  assert.match(help.out, /^ {2}6 {2}the service refused the token \(401\)$/m);
  assert.equal((await cli("http://127.0.0.1:9", [], {})).code, 2);
});

Deno.test("the real task: deno task reviews --url <service> stats", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    await h.openPull(7, 1);
    await waitFor("the review done", async () => {
      const list = await h.api("GET", "/reviews");
      return (list.body.reviews as ReviewRecord[])[0]?.status === "completed" ? true : undefined;
    });
    const root = new URL("..", import.meta.url).pathname;
    const task = async (args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "reviews", "--url", h.url, ...args],
        cwd: root,
        env: { BACKEND_AUTH_TOKEN: BACKEND_TOKEN, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder();
      return { code: out.code, out: text.decode(out.stdout), err: text.decode(out.stderr) };
    };
    const stats = await task(["stats"]);
    assert.equal(stats.code, 0, stats.err);
    assert.match(stats.out, /^pending +0$/m);
    assert.match(stats.out, /^queue lag +0ms$/m);
    assert.ok(!stats.out.includes("\x1b["), "no colors when piped");

    const json = await task(["list", "--json"]);
    assert.equal(json.code, 0, json.err);
    assert.equal(JSON.parse(json.out).reviews[0].status, "completed");
    const missing = await task(["show", "nope"]);
    assert.equal(missing.code, 3);
    assert.match(missing.err, /error: review nope not found/);
  });
});
