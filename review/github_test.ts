import assert from "node:assert/strict";
import { DEFAULT_DIFF, type FakeGitHub, startFakeGitHub } from "../tests/fakes/github.ts";
import { ReviewError } from "./errors.ts";
import { filesFromDiff, truncateDiff } from "./diff.ts";
import { createGitHubClient } from "./github.ts";

const TOKEN = "ghs_very-secret-token-123";

async function withFake(fn: (gh: FakeGitHub) => Promise<void>) {
  const gh = await startFakeGitHub();
  try {
    await fn(gh);
  } finally {
    await gh.close();
  }
}

/** Asserts a rejection with a github_error ReviewError, and returns it. */
async function reviewError(promise: Promise<unknown>): Promise<ReviewError> {
  let caught: unknown;
  await assert.rejects(promise, (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof ReviewError, String(caught));
  assert.equal(caught.reason, "github_error");
  assert.ok(!caught.message.includes(TOKEN), caught.message);
  return caught;
}

Deno.test("getPullRequest reads the PR through Octokit, with the token", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 3, headSha: "c".repeat(40), title: "Fix" });
    gh.setPull({ owner: "octo", repo: "app", number: 5, state: "closed", draft: true });
    const client = createGitHubClient({ baseUrl: `${gh.url}/`, token: TOKEN });
    assert.deepEqual(await client.getPullRequest("octo/app", 3), {
      headSha: "c".repeat(40),
      baseSha: "b".repeat(40),
      title: "Fix",
      state: "open",
      draft: false,
      headRef: "feature",
    });
    const closed = await client.getPullRequest("octo/app", 5);
    assert.deepEqual([closed.state, closed.draft], ["closed", true]);
    assert.deepEqual(gh.requests.map((r) => `${r.method} ${r.path}`), [
      "GET /repos/octo/app/pulls/3",
      "GET /repos/octo/app/pulls/5",
    ]);
    for (const { authorization } of gh.requests) {
      assert.ok(
        authorization === `token ${TOKEN}` || authorization === `Bearer ${TOKEN}`,
        String(authorization),
      );
    }
  }));

Deno.test("without a token no Authorization header is sent", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 1 });
    await createGitHubClient({ baseUrl: gh.url }).getPullRequest("octo/app", 1);
    assert.equal(gh.requests[0].authorization, null);
  }));

Deno.test("getDiff returns the diff text", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 3 });
    const client = createGitHubClient({ baseUrl: gh.url, token: TOKEN });
    const diff = await client.getDiff("octo/app", 3);
    assert.equal(diff, DEFAULT_DIFF);
    assert.deepEqual(filesFromDiff(diff), ["src/app.ts", "README.md"]);
  }));

Deno.test("getDiff bounds the diff it accepts, at a line", () =>
  withFake(async (gh) => {
    const line = "+" + "é".repeat(49) + "\n"; // 100 bytes
    const diff = "diff --git a/big.ts b/big.ts\n" + line.repeat(5_000);
    gh.setPull({ owner: "octo", repo: "app", number: 3, diff });
    const client = createGitHubClient({ baseUrl: gh.url, token: TOKEN, maxDiffBytes: 10_050 });
    const got = await client.getDiff("octo/app", 3);
    assert.ok(new TextEncoder().encode(got).length <= 10_050);
    assert.ok(got.endsWith("\n"));
    assert.ok(diff.startsWith(got));
    assert.equal(got, truncateDiff(diff, 10_050).diff);
    // Unbounded by default for a diff this small.
    const all = await createGitHubClient({ baseUrl: gh.url }).getDiff("octo/app", 3);
    assert.equal(all, diff);
  }));

Deno.test("createComment posts, updateComment edits in place; a deleted comment is null", () =>
  withFake(async (gh) => {
    const client = createGitHubClient({ baseUrl: gh.url, token: TOKEN });
    const first = await client.createComment("octo/app", 3, "one");
    assert.match(first.url, new RegExp(`/octo/app/pull/3#issuecomment-${first.id}$`));
    assert.deepEqual(gh.comments.map((c) => [c.issueNumber, c.body, c.updatedCount]), [
      [3, "one", 0],
    ]);
    const second = await client.updateComment("octo/app", first.id, "two");
    assert.deepEqual(second, first);
    assert.deepEqual(gh.comments.map((c) => [c.body, c.updatedCount]), [["two", 1]]);

    assert.equal(await client.updateComment("octo/app", 999_999, "three"), null);
    assert.deepEqual(gh.comments.map((c) => [c.id, c.body]), [[first.id, "two"]]);
    assert.deepEqual(gh.requests.map((r) => `${r.method} ${r.path}`), [
      "POST /repos/octo/app/issues/3/comments",
      `PATCH /repos/octo/app/issues/comments/${first.id}`,
      "PATCH /repos/octo/app/issues/comments/999999",
    ]);
  }));

Deno.test("comment errors: 5xx retryable, 422 final", () =>
  withFake(async (gh) => {
    const client = createGitHubClient({ baseUrl: gh.url, token: TOKEN });
    gh.failNext("comment", 502);
    const e502 = await reviewError(client.createComment("octo/app", 3, "x"));
    assert.equal(e502.retryable, true);
    assert.equal(e502.message, "GitHub issues.createComment octo/app#3 answered 502: injected 502");

    gh.failNext("comment", 422);
    const e422 = await reviewError(client.updateComment("octo/app", 7, "x"));
    assert.equal(e422.retryable, false);
    assert.equal(
      e422.message,
      "GitHub issues.updateComment octo/app (comment 7) answered 422: injected 422",
    );
    assert.equal(gh.comments.length, 0);
  }));

Deno.test("GitHub errors: 5xx, 429 and rate-limited 403 retry; 401/403/404/422 are final", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 3 });
    // Retries inside the client are off here: each answer is classed as it comes.
    const client = createGitHubClient({ baseUrl: gh.url, token: TOKEN, retries: 0 });
    const later = Math.ceil(Date.now() / 1000) + 3600;
    const cases: Array<[number, Record<string, string>, boolean]> = [
      [500, {}, true],
      [502, {}, true],
      [503, {}, true],
      [429, {}, true],
      // A limit that resets within seconds is waited for inside the client (tested below).
      [403, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": `${later}` }, true],
      [403, { "retry-after": "60" }, true],
      [403, { "x-ratelimit-remaining": "4999" }, false],
      [401, {}, false],
      [404, {}, false],
      [410, {}, false],
      [422, {}, false],
    ];
    for (const [status, headers, retryable] of cases) {
      gh.requests.length = 0;
      gh.failNext("pulls.get", status, 1, headers);
      const e = await reviewError(client.getPullRequest("octo/app", 3));
      assert.equal(e.retryable, retryable, `${status} ${JSON.stringify(headers)}`);
      assert.equal(e.message, `GitHub pulls.get octo/app#3 answered ${status}: injected ${status}`);
      assert.equal(gh.requests.length, 1, "retries: 0 makes one request");
    }
    gh.failNext("diff", 503);
    const diffError = await reviewError(client.getDiff("octo/app", 3));
    assert.equal(diffError.retryable, true);
    assert.match(diffError.message, /503/);
    assert.ok(await client.getPullRequest("octo/app", 3));
  }));

Deno.test("a 5xx read is retried inside the client; a create that may have happened is not", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 3 });
    const client = createGitHubClient({ baseUrl: gh.url, token: TOKEN, retryBaseMs: 1 });
    gh.failNext("pulls.get", 502, 2);
    assert.equal((await client.getPullRequest("octo/app", 3)).headSha, "a".repeat(40));
    assert.equal(gh.requests.filter((r) => r.method === "GET").length, 3, "two retries");
    gh.requests.length = 0;
    gh.failNext("comment", 502, 1, { afterEffect: true });
    const e = await reviewError(client.createComment("octo/app", 3, "hello"));
    assert.equal(e.ambiguous, true);
    assert.equal(gh.requests.length, 1, "a create is sent once");
    assert.equal(gh.comments.length, 1);
  }));

Deno.test("a rate limit that resets within seconds is waited for once", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 3 });
    const client = createGitHubClient({ baseUrl: gh.url, token: TOKEN, retryBaseMs: 1 });
    const reset = `${Math.floor(Date.now() / 1000)}`;
    gh.failNext("pulls.get", 403, 1, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset });
    assert.ok(await client.getPullRequest("octo/app", 3));
    assert.equal(gh.requests.length, 2);
    // A 429 is retried twice; a third answers the step, retryable.
    gh.requests.length = 0;
    gh.failNext("pulls.get", 429, 3, { "retry-after": "0" });
    const e = await reviewError(client.getPullRequest("octo/app", 3));
    assert.equal(e.retryable, true);
    assert.equal(gh.requests.length, 3);
  }));

Deno.test("an unknown pull is a final 404", () =>
  withFake(async (gh) => {
    const client = createGitHubClient({ baseUrl: gh.url, token: TOKEN });
    const e = await reviewError(client.getPullRequest("octo/app", 12));
    assert.equal(e.retryable, false);
    assert.equal(e.message, "GitHub pulls.get octo/app#12 answered 404: Not Found");
    const d = await reviewError(client.getDiff("octo/app", 12));
    assert.equal(d.retryable, false);
    assert.match(d.message, /answered 404: Not Found/);
  }));

Deno.test("the token never appears in a message, even when the server echoes it", async () => {
  const echo: typeof fetch = (_input, init) => {
    const auth = new Headers(init?.headers).get("authorization");
    return Promise.resolve(Response.json({ message: `bad credentials ${auth}` }, { status: 401 }));
  };
  const client = createGitHubClient({ baseUrl: "http://127.0.0.1:1", token: TOKEN, fetch: echo });
  const e = await reviewError(client.getPullRequest("octo/app", 1));
  assert.equal(e.retryable, false);
  assert.match(e.message, /answered 401: bad credentials .*\[REDACTED\]/);
  assert.ok(!JSON.stringify(e.cause ?? null).includes(TOKEN));
});

Deno.test("a connection error is retryable", async () => {
  const client = createGitHubClient({ baseUrl: "http://127.0.0.1:9", token: TOKEN });
  const e = await reviewError(client.getPullRequest("octo/app", 1));
  assert.equal(e.retryable, true);
  assert.match(e.message, /^GitHub pulls\.get octo\/app#1 failed without an answer: /);
});

Deno.test("a request that does not answer in time is a retryable timeout", async () => {
  const hang: typeof fetch = (_input, init) =>
    new Promise((_, reject) => {
      const signal = init?.signal;
      assert.ok(signal, "each request carries a signal");
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  const client = createGitHubClient({ baseUrl: "http://x.invalid", fetch: hang, timeoutMs: 50 });
  const started = Date.now();
  const e = await reviewError(client.getDiff("octo/app", 1));
  assert.equal(e.retryable, true);
  assert.match(e.message, /timed out after 50 ms/);
  assert.ok(Date.now() - started < 5_000);
});

Deno.test("a repo that is not owner/name is a final error without a request", async () => {
  let calls = 0;
  const counting: typeof fetch = () => {
    calls++;
    return Promise.resolve(new Response("{}"));
  };
  const client = createGitHubClient({ baseUrl: "http://x.invalid", fetch: counting });
  for (const repo of ["noslash", "/name", "owner/"]) {
    const e = await reviewError(client.getPullRequest(repo, 1));
    assert.equal(e.retryable, false);
  }
  assert.equal(calls, 0);
  // Split once: the rest is the repository name.
  let url = "";
  const capture: typeof fetch = (input) => {
    url = String(input);
    return Promise.resolve(Response.json({ message: "Not Found" }, { status: 404 }));
  };
  await reviewError(
    createGitHubClient({ baseUrl: "http://x.invalid", fetch: capture }).getPullRequest("a/b/c", 1),
  );
  assert.equal(url, "http://x.invalid/repos/a/b%2Fc/pulls/1");
});

Deno.test("filesFromDiff takes the b/ path of each file once, in order", () => {
  const cases: Array<[string, string[]]> = [
    ["", []],
    ["diff --git a/a.ts b/a.ts\n+x\ndiff --git a/old.ts b/new.ts\n+y\n", ["a.ts", "new.ts"]],
    ["diff --git a/a.ts b/a.ts\ndiff --git a/b.ts b/b.ts\ndiff --git a/a.ts b/a.ts\n", [
      "a.ts",
      "b.ts",
    ]],
    ["diff --git a/dir b/x.ts b/dir b/x.ts\n", ["dir b/x.ts"]],
    ['diff --git "a/sp ace\\t.ts" "b/sp ace\\t.ts"\n', ["sp ace\t.ts"]],
    ['diff --git "a/caf\\303\\251.ts" "b/caf\\303\\251.ts"\n', ["café.ts"]],
    ["diff --git a/w.ts b/w.ts\r\n+x\r\n", ["w.ts"]],
    [" diff --git a/not.ts b/not.ts\n+diff --git a/no.ts b/no.ts\n", []],
  ];
  for (const [diff, files] of cases) assert.deepEqual(filesFromDiff(diff), files, diff);
});

Deno.test("truncateDiff cuts at a line boundary within the byte bound", () => {
  const diff = "diff --git a/a.ts b/a.ts\n+x\ndiff --git a/old.ts b/new.ts\n+y\n";
  assert.deepEqual(truncateDiff(diff, 1000), { diff, truncated: false });
  assert.deepEqual(truncateDiff(diff, new TextEncoder().encode(diff).length), {
    diff,
    truncated: false,
  });
  assert.deepEqual(truncateDiff(diff, 30), {
    diff: "diff --git a/a.ts b/a.ts\n+x\n",
    truncated: true,
  });
  assert.deepEqual(truncateDiff(diff, 10), { diff: "", truncated: true });
  assert.deepEqual(truncateDiff(diff, 0), { diff: "", truncated: true });
  const wide = "+éé\n+😀\n"; // 6 + 6 bytes
  assert.deepEqual(truncateDiff(wide, 11), { diff: "+éé\n", truncated: true });
  assert.deepEqual(truncateDiff(wide, 6), { diff: "+éé\n", truncated: true });
  assert.deepEqual(truncateDiff(wide, 5), { diff: "", truncated: true });
  for (let max = 0; max < 80; max++) {
    const cut = truncateDiff(diff, max);
    assert.ok(new TextEncoder().encode(cut.diff).length <= max);
    assert.ok(diff.startsWith(cut.diff));
    assert.ok(cut.diff === "" || cut.diff.endsWith("\n"));
  }
});
