import assert from "node:assert/strict";
import { startFakeGitHub } from "../tests/fakes/github.ts";
import { ReviewError } from "./errors.ts";
import { createGitHubClient, filesFromDiff, truncateDiff } from "./github.ts";

async function withFake(fn: (gh: Awaited<ReturnType<typeof startFakeGitHub>>) => Promise<void>) {
  const gh = await startFakeGitHub();
  try {
    await fn(gh);
  } finally {
    await gh.close();
  }
}

Deno.test("getPullRequest and getDiff read the PR through Octokit", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 3, headSha: "c".repeat(40), title: "Fix" });
    const client = createGitHubClient({ baseUrl: gh.url, token: "secret-token" });
    const pr = await client.getPullRequest("octo/app", 3);
    assert.deepEqual(pr, {
      headSha: "c".repeat(40),
      baseSha: "b".repeat(40),
      title: "Fix",
      state: "open",
      draft: false,
    });
    const diff = await client.getDiff("octo/app", 3);
    assert.match(diff, /^diff --git a\/src\/app.ts/);
    assert.match(gh.requests[0].authorization ?? "", /secret-token/);
  }));

Deno.test("upsertComment creates, updates in place, and recreates a deleted comment", () =>
  withFake(async (gh) => {
    const client = createGitHubClient({ baseUrl: gh.url, token: "t" });
    const first = await client.upsertComment("octo/app", 3, "one");
    const second = await client.upsertComment("octo/app", 3, "two", first.id);
    assert.equal(second.id, first.id);
    assert.deepEqual([gh.comments.length, gh.comments[0].body, gh.comments[0].updatedCount], [
      1,
      "two",
      1,
    ]);
    const third = await client.upsertComment("octo/app", 3, "three", 999_999);
    assert.notEqual(third.id, first.id);
    assert.equal(gh.comments.length, 2);
    assert.match(third.url, /issuecomment-/);
  }));

Deno.test("GitHub errors are retryable for 5xx and final for 404, without the token", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 3 });
    const client = createGitHubClient({ baseUrl: gh.url, token: "very-secret-token" });
    gh.failNext("pulls.get", 503);
    await assert.rejects(client.getPullRequest("octo/app", 3), (e: unknown) => {
      assert.ok(e instanceof ReviewError);
      assert.equal(e.retryable, true);
      assert.equal(e.reason, "github_error");
      assert.match(e.message, /503/);
      assert.doesNotMatch(e.message, /very-secret-token/);
      return true;
    });
    await assert.rejects(client.getPullRequest("octo/app", 4), (e: unknown) => {
      assert.ok(e instanceof ReviewError);
      assert.equal(e.retryable, false);
      assert.match(e.message, /404/);
      return true;
    });
  }));

Deno.test("a connection error is retryable", async () => {
  const client = createGitHubClient({ baseUrl: "http://127.0.0.1:9", token: "t" });
  await assert.rejects(
    client.getPullRequest("octo/app", 1),
    (e: unknown) => e instanceof ReviewError && e.retryable,
  );
});

Deno.test("filesFromDiff and truncateDiff", () => {
  const diff = "diff --git a/a.ts b/a.ts\n+x\ndiff --git a/old.ts b/new.ts\n+y\n";
  assert.deepEqual(filesFromDiff(diff), ["a.ts", "new.ts"]);
  assert.deepEqual(truncateDiff(diff, 1000), { diff, truncated: false });
  const cut = truncateDiff(diff, 30);
  assert.equal(cut.truncated, true);
  assert.equal(cut.diff, "diff --git a/a.ts b/a.ts\n+x\n");
});
