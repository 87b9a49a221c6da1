/**
 * The fake GitHub's app endpoints driven by the real Octokit (and `@octokit/auth-app`), so the
 * shapes are the ones Octokit and its auth strategy take.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { generateKeyPairSync, sign } from "node:crypto";
import { Octokit } from "@octokit/rest";
import { createAppAuth } from "@octokit/auth-app";
import { type FakeGitHub, startFakeGitHub } from "./github.ts";

const APP_ID = 4242;
/** Octokit logs every failed request; the refusals here are expected. */
const log = { debug() {}, info() {}, warn() {}, error() {} };
const keyPair = () =>
  generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
const KEY = keyPair();
const OTHER_KEY = keyPair();

/** A running fake for `fn`, closed afterwards. */
async function withFake(fn: (gh: FakeGitHub) => Promise<void>): Promise<void> {
  const gh = await startFakeGitHub();
  try {
    await fn(gh);
  } finally {
    await gh.close();
  }
}

/** A fake in app mode with `octo` installed as 77 and pull `octo/app#3`. */
function withApp(fn: (gh: FakeGitHub) => Promise<void>, tokenTtlMs?: number) {
  return withFake(async (gh) => {
    gh.enableApp({ appId: APP_ID, publicKeyPem: KEY.publicKey, tokenTtlMs });
    gh.install("octo", 77);
    gh.setPull({ owner: "octo", repo: "app", number: 3 });
    await fn(gh);
  });
}

/** Octokit authenticated as installation 77 through `@octokit/auth-app`. */
const appOctokit = (gh: FakeGitHub, installationId = 77) =>
  new Octokit({
    baseUrl: gh.url,
    log,
    authStrategy: createAppAuth,
    auth: { appId: APP_ID, privateKey: KEY.privateKey, installationId },
  });

/** Octokit with a plain token. */
const tokenOctokit = (gh: FakeGitHub, token = "personal-token") =>
  new Octokit({ baseUrl: gh.url, auth: token, log });

/** A JWT signed with `privateKey` (RS256) carrying `claims`. */
function jwt(claims: Record<string, unknown>, privateKey = KEY.privateKey): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const data = `${part({ alg: "RS256", typ: "JWT" })}.${part(claims)}`;
  return `${data}.${sign("sha256", Buffer.from(data), privateKey).toString("base64url")}`;
}

const now = () => Math.floor(Date.now() / 1000);

/** The status and body of the request error `promise` rejects with. */
async function refusal(
  promise: Promise<unknown>,
): Promise<{ status: number; data: { message: string; errors?: unknown[] } }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { status: number; response?: { data: { message: string } } };
    assert.equal(typeof e.status, "number", String(error));
    return { status: e.status, data: e.response!.data };
  }
  throw new Error("expected a refusal");
}

Deno.test("an app JWT from @octokit/auth-app gets an installation token; it writes as the bot", () =>
  withApp(async (gh) => {
    const octokit = appOctokit(gh);
    const comment = await octokit.rest.issues.createComment({
      owner: "octo",
      repo: "app",
      issue_number: 3,
      body: "hi",
    });
    assert.equal(comment.status, 201);
    assert.deepEqual(
      [comment.data.user?.login, comment.data.user?.type],
      ["ai-review[bot]", "Bot"],
    );
    assert.equal(gh.comments[0].author, "ai-review[bot]");
    assert.equal(gh.issuedTokens.length, 1);
    const [issued] = gh.issuedTokens;
    assert.match(issued.token, /^ghs_\w+$/);
    assert.equal(issued.installationId, 77);
    const expiresIn = Date.parse(issued.expiresAt) - Date.now();
    assert.ok(expiresIn > 59 * 60_000 && expiresIn <= 60 * 60_000 + 1000, issued.expiresAt);
    const tokenRequest = gh.requests.find((r) => r.path === "/app/installations/77/access_tokens")!;
    assert.match(tokenRequest.authorization!, /^bearer ey/i);
    assert.equal(gh.requests.at(-1)!.authorization, `token ${issued.token}`);

    // What the token answer says, as auth-app reads it.
    const auth = await createAppAuth({
      appId: APP_ID,
      privateKey: KEY.privateKey,
      request: octokit.request,
    })({ type: "installation", installationId: 77 }) as {
      token: string;
      expiresAt: string;
      permissions: Record<string, string>;
      repositorySelection: string;
    };
    assert.match(auth.token, /^ghs_/);
    assert.equal(auth.expiresAt, gh.issuedTokens[1].expiresAt);
    assert.equal(auth.repositorySelection, "all");
    assert.equal(auth.permissions.checks, "write");

    // An installation token has no user.
    const user = await refusal(octokit.rest.users.getAuthenticated());
    assert.deepEqual([user.status, user.data.message], [
      403,
      "Resource not accessible by integration",
    ]);
    // A personal token stays `review-bot`.
    const mine = await tokenOctokit(gh).rest.users.getAuthenticated();
    assert.deepEqual([mine.data.login, mine.data.type], ["review-bot", "User"]);
  }));

Deno.test("GET /repos/{o}/{r}/installation takes the app JWT: id, account, app_id; 404 elsewhere", () =>
  withApp(async (gh) => {
    const octokit = appOctokit(gh);
    const { data } = await octokit.rest.apps.getRepoInstallation({ owner: "octo", repo: "app" });
    assert.equal(data.id, 77);
    assert.equal(data.app_id, APP_ID);
    assert.deepEqual(
      [(data.account as { login: string }).login, (data.account as { type: string }).type],
      ["octo", "Organization"],
    );
    const missing = await refusal(
      octokit.rest.apps.getRepoInstallation({ owner: "someone", repo: "else" }),
    );
    assert.deepEqual([missing.status, missing.data.message], [404, "Not Found"]);
    // A token is not a JWT.
    const withToken = await refusal(
      tokenOctokit(gh).request("GET /repos/{owner}/{repo}/installation", {
        owner: "octo",
        repo: "app",
      }),
    );
    assert.deepEqual([withToken.status, withToken.data.message], [
      401,
      "A JSON web token could not be decoded",
    ]);
  }));

Deno.test("a JWT signed by another key, for another app, expired or too long is refused: 401", () =>
  withApp(async (gh) => {
    const ask = (token: string, installation = 77) =>
      refusal(
        new Octokit({ baseUrl: gh.url, log }).request(
          "POST /app/installations/{installation_id}/access_tokens",
          { installation_id: installation, headers: { authorization: `Bearer ${token}` } },
        ),
      );
    const good = { iat: now() - 30, exp: now() + 540, iss: String(APP_ID) };
    const cases: Array<[string, string, RegExp]> = [
      ["another key", jwt(good, OTHER_KEY.privateKey), /could not be decoded/],
      ["wrong iss", jwt({ ...good, iss: "999" }), /could not be decoded/],
      ["expired", jwt({ ...good, iat: now() - 700, exp: now() - 100 }), /'exp'.*future time/],
      ["exp - iat > 660", jwt({ ...good, exp: now() + 900 }), /too far in the future/],
      ["not a JWT", "abc.def", /could not be decoded/],
    ];
    for (const [name, token, message] of cases) {
      const { status, data } = await ask(token);
      assert.equal(status, 401, name);
      assert.match(data.message, message, name);
    }
    assert.equal(gh.issuedTokens.length, 0);
    // The same claims, well signed, work; an unknown installation is 404.
    const ok = await new Octokit({ baseUrl: gh.url, log }).request(
      "POST /app/installations/{installation_id}/access_tokens",
      { installation_id: 77, headers: { authorization: `Bearer ${jwt(good)}` } },
    );
    assert.equal(ok.status, 201);
    assert.deepEqual(Object.keys(ok.data).sort(), [
      "expires_at",
      "permissions",
      "repository_selection",
      "token",
    ]);
    assert.equal((await ask(jwt(good), 78)).status, 404);
  }));

Deno.test("app mode: unknown, expired and uninstalled ghs_ tokens are Bad credentials", () =>
  withApp(async (gh) => {
    const badCredentials = async (token: string) => {
      const { status, data } = await refusal(
        tokenOctokit(gh, token).rest.pulls.get({ owner: "octo", repo: "app", pull_number: 3 }),
      );
      assert.deepEqual([status, data.message], [401, "Bad credentials"]);
    };
    await badCredentials("ghs_neverIssued");
    await appOctokit(gh).rest.pulls.get({ owner: "octo", repo: "app", pull_number: 3 });
    const [first] = gh.issuedTokens;
    const pull = await tokenOctokit(gh, first.token).rest.pulls.get({
      owner: "octo",
      repo: "app",
      pull_number: 3,
    });
    assert.equal(pull.data.number, 3);
    first.expiresAt = new Date(Date.now() - 1000).toISOString();
    await badCredentials(first.token);

    await appOctokit(gh).rest.pulls.get({ owner: "octo", repo: "app", pull_number: 3 });
    const second = gh.issuedTokens[1];
    // An installation reaches only its own repositories.
    gh.setPull({ owner: "elsewhere", repo: "app", number: 1 });
    const hidden = await refusal(
      tokenOctokit(gh, second.token).rest.pulls.get({
        owner: "elsewhere",
        repo: "app",
        pull_number: 1,
      }),
    );
    assert.equal(hidden.status, 404);
    gh.uninstall(77);
    await badCredentials(second.token);
    const noToken = await refusal(
      new Octokit({ baseUrl: gh.url, log }).request(
        "POST /app/installations/{installation_id}/access_tokens",
        {
          installation_id: 77,
          headers: {
            authorization: `Bearer ${jwt({ iat: now() - 30, exp: now() + 540, iss: APP_ID })}`,
          },
        },
      ),
    );
    assert.equal(noToken.status, 404);
    // Any other token is not an installation token and keeps working.
    const other = await tokenOctokit(gh).rest.pulls.get({
      owner: "octo",
      repo: "app",
      pull_number: 3,
    });
    assert.equal(other.status, 200);
  }));

Deno.test("a token with a short TTL expires", () =>
  withApp(async (gh) => {
    await appOctokit(gh).rest.pulls.get({ owner: "octo", repo: "app", pull_number: 3 });
    const lifetime = Date.parse(gh.issuedTokens[0].expiresAt) - Date.now();
    assert.ok(lifetime > 0 && lifetime <= 1500, `${lifetime}`);
    await new Promise((r) => setTimeout(r, lifetime + 20));
    const { status } = await refusal(
      tokenOctokit(gh, gh.issuedTokens[0].token).rest.pulls.get({
        owner: "octo",
        repo: "app",
        pull_number: 3,
      }),
    );
    assert.equal(status, 401);
  }, 500));

// src/app.ts in DEFAULT_DIFF: right lines 1 (context), 2 (added), 3 (context); README.md line 1.
Deno.test("a review with comments on the diff is created; a line outside the diff is 422", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 3, headSha: "c".repeat(40) });
    const octokit = tokenOctokit(gh);
    const { status, data } = await octokit.rest.pulls.createReview({
      owner: "octo",
      repo: "app",
      pull_number: 3,
      event: "COMMENT",
      body: "Two findings",
      comments: [
        { path: "src/app.ts", line: 2, side: "RIGHT", body: "eval" },
        {
          path: "src/app.ts",
          start_line: 1,
          start_side: "RIGHT",
          line: 3,
          side: "RIGHT",
          body: "range",
        },
        { path: "README.md", line: 1, body: "readme" },
      ],
    });
    assert.equal(status, 200);
    assert.equal(data.state, "COMMENTED");
    assert.equal(data.commit_id, "c".repeat(40));
    assert.deepEqual([data.user?.login, data.user?.type], ["review-bot", "User"]);
    assert.match(data.html_url, /\/octo\/app\/pull\/3#pullrequestreview-\d+$/);
    assert.equal(data.pull_request_url, `${gh.url}/repos/octo/app/pulls/3`);
    assert.ok(data.node_id && data.submitted_at);
    const [review] = gh.reviews;
    assert.equal(review.id, data.id);
    assert.equal(review.nodeId, data.node_id);
    assert.deepEqual(review.comments.map((c) => [c.path, c.startLine, c.line]), [
      ["src/app.ts", undefined, 2],
      ["src/app.ts", 1, 3],
      ["README.md", undefined, 1],
    ]);

    const refused = async (comment: Record<string, unknown>, error: RegExp) => {
      const { status, data } = await refusal(octokit.rest.pulls.createReview({
        owner: "octo",
        repo: "app",
        pull_number: 3,
        event: "COMMENT",
        body: "x",
        comments: [{ path: "src/app.ts", body: "b", ...comment } as { path: string; body: string }],
      }));
      assert.equal(status, 422, JSON.stringify(comment));
      assert.equal(data.message, "Unprocessable Entity");
      assert.match(String(data.errors?.[0]), error);
    };
    await refused({ line: 9 }, /^Line could not be resolved$/);
    await refused({ line: 9, side: "LEFT" }, /^Line could not be resolved$/);
    await refused({ path: "other.ts", line: 1 }, /Path could not be resolved/);
    await refused({ start_line: 3, line: 2 }, /start line must (precede|be part)/);
    await refused({ start_line: 2, line: 2 }, /start line must precede/);
    assert.equal(gh.reviews.length, 1, "refused reviews are not stored");

    const list = await octokit.rest.pulls.listReviews({
      owner: "octo",
      repo: "app",
      pull_number: 3,
    });
    assert.deepEqual(list.data.map((r) => [r.id, r.state, r.body]), [
      [data.id, "COMMENTED", "Two findings"],
    ]);
  }));

Deno.test("start_line and line must share a hunk", () =>
  withFake(async (gh) => {
    gh.setPull({
      owner: "octo",
      repo: "app",
      number: 1,
      diff: [
        "diff --git a/a.ts b/a.ts",
        "--- a/a.ts",
        "+++ b/a.ts",
        "@@ -1,2 +1,3 @@",
        " one",
        "+two",
        " three",
        "@@ -20,1 +21,2 @@",
        " twenty",
        "+new",
        "",
      ].join("\n"),
    });
    const create = (start_line: number, line: number) =>
      tokenOctokit(gh).rest.pulls.createReview({
        owner: "octo",
        repo: "app",
        pull_number: 1,
        event: "COMMENT",
        comments: [{ path: "a.ts", start_line, line, body: "b" }],
      });
    assert.equal((await create(21, 22)).status, 200);
    const { status, data } = await refusal(create(2, 22));
    assert.equal(status, 422);
    assert.match(String(data.errors?.[0]), /same hunk/);
  }));

Deno.test("with an installation token reviews are the bot's; failures and holds apply", () =>
  withApp(async (gh) => {
    const octokit = appOctokit(gh);
    gh.failNext("review", 502, 1, { afterEffect: true });
    const late = await refusal(octokit.rest.pulls.createReview({
      owner: "octo",
      repo: "app",
      pull_number: 3,
      event: "COMMENT",
      body: "once",
    }));
    assert.equal(late.status, 502);
    assert.equal(gh.reviews.length, 1, "the review was created anyway");
    assert.deepEqual([gh.reviews[0].author, gh.reviews[0].authorType], ["ai-review[bot]", "Bot"]);
    const hold = gh.holdNext("review");
    const posting = octokit.rest.pulls.createReview({
      owner: "octo",
      repo: "app",
      pull_number: 3,
      event: "APPROVE",
    });
    await hold.started;
    assert.equal(gh.reviews.length, 2, "held after its side effect");
    hold.release();
    assert.equal((await posting).data.state, "APPROVED");
    const { data } = await octokit.rest.pulls.listReviews({
      owner: "octo",
      repo: "app",
      pull_number: 3,
    });
    assert.deepEqual(data.map((r) => r.user?.login), ["ai-review[bot]", "ai-review[bot]"]);
  }));

Deno.test("minimizeComment through octokit.graphql marks the review; an unknown id is NOT_FOUND", () =>
  withFake(async (gh) => {
    gh.setPull({ owner: "octo", repo: "app", number: 3 });
    const octokit = tokenOctokit(gh);
    const { data: review } = await octokit.rest.pulls.createReview({
      owner: "octo",
      repo: "app",
      pull_number: 3,
      event: "COMMENT",
      body: "old summary",
    });
    const minimize = `mutation($id: ID!) {
      minimizeComment(input: { subjectId: $id, classifier: OUTDATED }) {
        minimizedComment { isMinimized minimizedReason }
      }
    }`;
    const answer = await octokit.graphql<{
      minimizeComment: { minimizedComment: { isMinimized: boolean; minimizedReason: string } };
    }>(minimize, { id: review.node_id });
    assert.deepEqual(answer.minimizeComment.minimizedComment, {
      isMinimized: true,
      minimizedReason: "outdated",
    });
    assert.deepEqual(gh.reviews[0].minimized, { classifier: "OUTDATED" });
    assert.deepEqual(gh.requests.at(-1), {
      method: "POST",
      path: "/graphql",
      authorization: "token personal-token",
    });

    // Issue comments are minimizable too (inline arguments).
    const { data: comment } = await octokit.rest.issues.createComment({
      owner: "octo",
      repo: "app",
      issue_number: 3,
      body: "old",
    });
    await octokit.graphql(
      `mutation { minimizeComment(input: {subjectId: "${comment.node_id}", classifier: RESOLVED}) {
        minimizedComment { isMinimized } } }`,
    );
    assert.deepEqual(gh.comments[0].minimized, { classifier: "RESOLVED" });

    try {
      await octokit.graphql(minimize, { id: "PRR_missing" });
      assert.fail("expected a GraphQL error");
    } catch (error) {
      const e = error as { errors?: Array<{ type: string; message: string }>; data?: unknown };
      assert.equal(e.errors?.[0].type, "NOT_FOUND");
      assert.equal(
        e.errors?.[0].message,
        "Could not resolve to a node with the global id of 'PRR_missing'",
      );
    }
    gh.failNext("graphql", 502);
    const failed = await refusal(octokit.graphql(minimize, { id: review.node_id }));
    assert.equal(failed.status, 502);
  }));

Deno.test("check runs: create, update appends annotations, list by name; > 50 annotations is 422", () =>
  withApp(async (gh) => {
    const octokit = appOctokit(gh);
    const sha = "a".repeat(40);
    const created = await octokit.rest.checks.create({
      owner: "octo",
      repo: "app",
      name: "AI review",
      head_sha: sha,
      status: "in_progress",
      external_id: "rev-1",
      output: {
        title: "Reviewing",
        summary: "…",
        annotations: [{
          path: "src/app.ts",
          start_line: 2,
          end_line: 2,
          annotation_level: "failure",
          message: "eval",
        }],
      },
    });
    assert.equal(created.status, 201);
    const run = created.data;
    assert.deepEqual(
      [run.name, run.head_sha, run.external_id, run.status, run.conclusion],
      ["AI review", sha, "rev-1", "in_progress", null],
    );
    assert.equal(run.output.annotations_count, 1);
    assert.equal(
      run.output.annotations_url,
      `${gh.url}/repos/octo/app/check-runs/${run.id}/annotations`,
    );
    assert.equal(run.app?.id, APP_ID);
    assert.equal(run.app?.slug, "ai-review");
    assert.ok(run.started_at && run.html_url && run.details_url);
    assert.deepEqual(run.pull_requests.map((p) => p.number), [3]);

    const annotation = {
      path: "README.md",
      start_line: 1,
      end_line: 1,
      annotation_level: "warning" as const,
      message: "m",
    };
    const updated = await octokit.rest.checks.update({
      owner: "octo",
      repo: "app",
      check_run_id: run.id,
      conclusion: "failure",
      output: { title: "2 findings", summary: "done", annotations: [annotation] },
    });
    assert.deepEqual(
      [updated.data.status, updated.data.conclusion, updated.data.output.annotations_count],
      ["completed", "failure", 2],
    );
    assert.ok(updated.data.completed_at);
    const [stored] = gh.checkRuns;
    assert.equal(stored.updates, 1);
    assert.deepEqual(stored.annotations.map((a) => a.path), ["src/app.ts", "README.md"]);
    assert.equal(stored.output.title, "2 findings");

    const tooMany = await refusal(octokit.rest.checks.update({
      owner: "octo",
      repo: "app",
      check_run_id: run.id,
      output: { title: "t", summary: "s", annotations: Array(51).fill(annotation) },
    }));
    assert.equal(tooMany.status, 422);
    assert.equal(gh.checkRuns[0].annotations.length, 2);
    const noConclusion = await refusal(octokit.rest.checks.create({
      owner: "octo",
      repo: "app",
      name: "x",
      head_sha: sha,
      status: "completed",
    }));
    assert.equal(noConclusion.status, 422);

    await octokit.rest.checks.create({
      owner: "octo",
      repo: "app",
      name: "AI review",
      head_sha: sha,
    });
    await octokit.rest.checks.create({ owner: "octo", repo: "app", name: "lint", head_sha: sha });
    const list = (params: Record<string, string>) =>
      octokit.rest.checks.listForRef({ owner: "octo", repo: "app", ref: sha, ...params });
    const latest = await list({ check_name: "AI review" });
    assert.equal(latest.data.total_count, 1);
    assert.equal(latest.data.check_runs[0].status, "queued", "the newest run of that name");
    assert.equal((await list({ check_name: "AI review", filter: "all" })).data.total_count, 2);
    assert.equal((await list({})).data.total_count, 2);
    const paged = await list({ filter: "all", per_page: "2", page: "2" });
    assert.deepEqual([paged.data.total_count, paged.data.check_runs.length], [3, 1]);
  }));

Deno.test("check runs are refused to a personal token in app mode, and to anyone when forbidden", () =>
  withApp(async (gh) => {
    const create = (octokit: Octokit) =>
      octokit.rest.checks.create({ owner: "octo", repo: "app", name: "n", head_sha: "a" });
    const pat = await refusal(create(tokenOctokit(gh)));
    assert.deepEqual([pat.status, pat.data.message], [
      403,
      "Resource not accessible by personal access token",
    ]);
    assert.equal((await create(appOctokit(gh))).status, 201);
    gh.checksForbidden(true);
    const bot = await refusal(create(appOctokit(gh)));
    assert.deepEqual([bot.status, bot.data.message], [
      403,
      "Resource not accessible by integration",
    ]);
    gh.checksForbidden(false);
    assert.equal((await create(appOctokit(gh))).status, 201);
    assert.equal(gh.checkRuns.length, 2);
  }));

Deno.test("without app mode checksForbidden(true) refuses a personal token", () =>
  withFake(async (gh) => {
    const octokit = tokenOctokit(gh);
    const params = { owner: "o", repo: "r", name: "n", head_sha: "a".repeat(40) };
    assert.equal((await octokit.rest.checks.create(params)).status, 201);
    gh.checksForbidden();
    const { status, data } = await refusal(octokit.rest.checks.create(params));
    assert.deepEqual([status, data.message], [
      403,
      "Resource not accessible by personal access token",
    ]);
  }));

Deno.test("commit statuses: 201 in GitHub's shape; a description over 140 characters is 422", () =>
  withFake(async (gh) => {
    const octokit = tokenOctokit(gh);
    const sha = "d".repeat(40);
    const { status, data } = await octokit.rest.repos.createCommitStatus({
      owner: "octo",
      repo: "app",
      sha,
      state: "pending",
      target_url: "https://review.example/r/1",
      description: "Reviewing",
      context: "ai-review",
    });
    assert.equal(status, 201);
    assert.deepEqual(
      [data.state, data.description, data.target_url, data.context, data.creator?.login],
      ["pending", "Reviewing", "https://review.example/r/1", "ai-review", "review-bot"],
    );
    assert.ok(data.id && data.node_id && data.created_at && data.url.endsWith(sha));
    assert.deepEqual(gh.statuses.map((s) => [s.sha, s.state, s.context]), [
      [sha, "pending", "ai-review"],
    ]);
    const long = await refusal(octokit.rest.repos.createCommitStatus({
      owner: "octo",
      repo: "app",
      sha,
      state: "success",
      description: "x".repeat(141),
    }));
    assert.equal(long.status, 422);
    assert.equal(long.data.message, "Validation Failed");
    assert.match(JSON.stringify(long.data.errors), /description is too long/);
    const badState = await refusal(octokit.request("POST /repos/{owner}/{repo}/statuses/{sha}", {
      owner: "octo",
      repo: "app",
      sha,
      state: "done" as "success",
    }));
    assert.equal(badState.status, 422);
    assert.equal(gh.statuses.length, 1);
  }));

Deno.test("contents: base64 wrapped every 60 characters round-trips; raw; directories; 404", () =>
  withFake(async (gh) => {
    const text = "rules:\n  - name: no eval ✓\n" + "x".repeat(200) + "\n";
    gh.setFile("octo", "app", "main", ".github/ai-review.yml", text);
    gh.setFile("octo", "app", "feature", ".github/ai-review.yml", "other");
    const octokit = tokenOctokit(gh);
    const { data } = await octokit.rest.repos.getContent({
      owner: "octo",
      repo: "app",
      path: ".github/ai-review.yml",
    });
    assert.ok(!Array.isArray(data) && data.type === "file");
    const file = data as {
      content: string;
      encoding: string;
      size: number;
      name: string;
      path: string;
      sha: string;
      download_url: string;
      html_url: string;
    };
    assert.equal(file.encoding, "base64");
    assert.equal(file.name, "ai-review.yml");
    assert.equal(file.path, ".github/ai-review.yml");
    const bytes = new TextEncoder().encode(text);
    assert.equal(file.size, bytes.length);
    assert.match(file.sha, /^[0-9a-f]{40}$/);
    assert.ok(file.download_url && file.html_url);
    const lines = file.content.split("\n");
    assert.equal(lines.pop(), "", "ends with a newline");
    assert.ok(lines.slice(0, -1).every((l) => l.length === 60));
    assert.equal(new TextDecoder().decode(Buffer.from(file.content, "base64")), text);

    const feature = await octokit.rest.repos.getContent({
      owner: "octo",
      repo: "app",
      path: ".github/ai-review.yml",
      ref: "feature",
    });
    assert.equal(
      Buffer.from((feature.data as { content: string }).content, "base64").toString(),
      "other",
    );
    const raw = await octokit.rest.repos.getContent({
      owner: "octo",
      repo: "app",
      path: ".github/ai-review.yml",
      mediaType: { format: "raw" },
    });
    assert.equal(raw.data as unknown, text);
    const dir = await octokit.rest.repos.getContent({
      owner: "octo",
      repo: "app",
      path: ".github",
    });
    assert.ok(Array.isArray(dir.data));
    assert.deepEqual(dir.data.map((e) => [e.type, e.path]), [["file", ".github/ai-review.yml"]]);
    const missing = await refusal(
      octokit.rest.repos.getContent({ owner: "octo", repo: "app", path: "nope.yml" }),
    );
    assert.equal(missing.status, 404);
  }));

Deno.test("reactions: 201 the first time, 200 for the same one again; a stranger's comment", () =>
  withFake(async (gh) => {
    const octokit = tokenOctokit(gh);
    const comment = gh.addComment({
      owner: "octo",
      repo: "app",
      issueNumber: 3,
      body: "/review please",
      author: "alice",
    });
    const listed = await octokit.rest.issues.listComments({
      owner: "octo",
      repo: "app",
      issue_number: 3,
    });
    assert.deepEqual(listed.data.map((c) => [c.id, c.user?.login, c.user?.type]), [
      [comment.id, "alice", "User"],
    ]);
    const react = () =>
      octokit.rest.reactions.createForIssueComment({
        owner: "octo",
        repo: "app",
        comment_id: comment.id,
        content: "eyes",
      });
    const first = await react();
    assert.equal(first.status, 201);
    assert.deepEqual([first.data.content, first.data.user?.login], ["eyes", "review-bot"]);
    const again = await react();
    assert.deepEqual([again.status, again.data.id], [200, first.data.id]);
    assert.deepEqual(gh.reactions.map((r) => [r.commentId, r.content, r.user]), [
      [comment.id, "eyes", "review-bot"],
    ]);
    const bad = await refusal(octokit.request(
      "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
      { owner: "octo", repo: "app", comment_id: comment.id, content: "party" as "eyes" },
    ));
    assert.equal(bad.status, 422);
    const unknown = await refusal(octokit.rest.reactions.createForIssueComment({
      owner: "octo",
      repo: "app",
      comment_id: 424242,
      content: "eyes",
    }));
    assert.equal(unknown.status, 404);
    // The stranger's comment is not ours to edit.
    const edit = await refusal(octokit.rest.issues.updateComment({
      owner: "octo",
      repo: "app",
      comment_id: comment.id,
      body: "mine now",
    }));
    assert.equal(edit.status, 403);
  }));

Deno.test("without app mode nothing changes: any token writes as review-bot", () =>
  withFake(async (gh) => {
    const octokit = tokenOctokit(gh, "ghs_whatever");
    const { data } = await octokit.rest.issues.createComment({
      owner: "o",
      repo: "r",
      issue_number: 1,
      body: "b",
    });
    assert.deepEqual([data.user?.login, data.user?.type], ["review-bot", "User"]);
    assert.equal(gh.comments[0].author, undefined);
    const me = await octokit.rest.users.getAuthenticated();
    assert.equal(me.data.login, "review-bot");
    await octokit.rest.issues.updateComment({
      owner: "o",
      repo: "r",
      comment_id: data.id,
      body: "c",
    });
    assert.equal(gh.comments[0].updatedCount, 1);
  }));
