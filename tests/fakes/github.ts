/**
 * A fake GitHub REST API on loopback: pulls (JSON and diff), issue comments, injected failures.
 * A Hono app served by `Deno.serve` on 127.0.0.1 and a free port; every test starts and closes its
 * own.
 *
 * @module
 */
import { Hono } from "hono";

/** A pull request the fake serves (`diff` is returned for `Accept: …diff`). */
export interface FakePull {
  /** Repository owner login. */
  owner: string;
  /** Repository name. */
  repo: string;
  /** Pull request number. */
  number: number;
  /** `head.sha` (default `"a".repeat(40)`). */
  headSha: string;
  /** `base.sha` (default `"b".repeat(40)`). */
  baseSha: string;
  /** Title (default `Pull <number>`). */
  title: string;
  /** State (default `open`). */
  state: "open" | "closed";
  /** Draft flag (default false). */
  draft: boolean;
  /** The unified diff (default {@link DEFAULT_DIFF}). */
  diff: string;
}

/** An issue comment posted to the fake. */
export interface FakeComment {
  /** Comment id (from 1000 up). */
  id: number;
  /** Repository owner login. */
  owner: string;
  /** Repository name. */
  repo: string;
  /** The issue (pull request) number it was posted on. */
  issueNumber: number;
  /** Current body. */
  body: string;
  /** How many times it was edited. */
  updatedCount: number;
  /** Who wrote it (`review-bot`, the token's user, unless a test adds a stranger's comment). */
  author?: string;
}

/** Routes failures can be injected into (`comment` covers both create and update). */
export type FakeRoute = "pulls.get" | "diff" | "comment" | "comments.list";

/** How an injected failure behaves. */
export interface FailOptions {
  /** Answer headers (e.g. `retry-after`). */
  headers?: Record<string, string>;
  /** Do what was asked (create or edit the comment) and answer the error anyway. */
  afterEffect?: boolean;
}

/** A held request: resolves `started` when it arrives, waits for `release()`. */
export interface HeldRequest {
  started: Promise<void>;
  release(): void;
}

/**
 * A running fake.
 *
 * @example
 * ```ts
 * const gh = await startFakeGitHub();
 * gh.setPull({ owner: "octo", repo: "app", number: 3 });
 * gh.failNext("pulls.get", 503); // the next pulls.get answers 503, then it works again
 * await gh.close();
 * ```
 */
export interface FakeGitHub {
  /** Base URL, e.g. `http://127.0.0.1:54321` (use as the Octokit `baseUrl`). */
  url: string;
  /** Pulls by `${owner}/${repo}#${number}`. */
  pulls: Map<string, FakePull>;
  /** Every comment posted, in order. */
  comments: FakeComment[];
  /** Every request received, in order. */
  requests: Array<{ method: string; path: string; authorization: string | null }>;
  /** Adds or changes a pull; unspecified fields keep their value or get a default. */
  setPull(pull: Partial<FakePull> & { owner: string; repo: string; number: number }): FakePull;
  /** The next `times` (default 1) requests to `route` answer `status` (with `headers`, if given). */
  failNext(
    route: FakeRoute,
    status: number,
    times?: number,
    options?: Record<string, string> | FailOptions,
  ): void;
  /** Holds the next request to `route` (after its side effect; `pulls.get` answers the pull as
   * it was when the request came) until released. */
  holdNext(route: FakeRoute): HeldRequest;
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * A diff that adds `eval(userInput)` (line 3) and an AWS access key id (line 2) to
 * `src/handler.js`: what the built-in local reviewer must find with zero configuration.
 */
export const EVAL_AND_KEY_DIFF: string = [
  "diff --git a/src/handler.js b/src/handler.js",
  "index 1111111..2222222 100644",
  "--- a/src/handler.js",
  "+++ b/src/handler.js",
  "@@ -1,2 +1,4 @@",
  " export function handle(userInput) {",
  "+  const key = 'AKIAIOSFODNN7EXAMPLE';",
  "+  return eval(userInput);",
  " }",
  "",
].join("\n");

/** The default diff of a pull: two files, `src/app.ts` and `README.md`. */
export const DEFAULT_DIFF: string = [
  "diff --git a/src/app.ts b/src/app.ts",
  "--- a/src/app.ts",
  "+++ b/src/app.ts",
  "@@ -1,2 +1,3 @@",
  " const a = 1;",
  "+const b = eval(input);",
  " export { a };",
  "diff --git a/README.md b/README.md",
  "--- a/README.md",
  "+++ b/README.md",
  "@@ -1 +1 @@",
  "-old",
  "+new",
  "",
].join("\n");

/**
 * Starts a fake GitHub on a free loopback port.
 *
 * @example
 * ```ts
 * const gh = await startFakeGitHub();
 * try {
 *   gh.setPull({ owner: "octo", repo: "app", number: 1, title: "Fix" });
 *   const client = createGitHubClient({ baseUrl: gh.url, token: "t" });
 *   await client.getPullRequest("octo/app", 1);
 * } finally {
 *   await gh.close();
 * }
 * ```
 */
export function startFakeGitHub(): Promise<FakeGitHub> {
  const pulls = new Map<string, FakePull>();
  const comments: FakeComment[] = [];
  const requests: FakeGitHub["requests"] = [];
  const failures = new Map<
    FakeRoute,
    { status: number; times: number; headers: Record<string, string>; afterEffect: boolean }
  >();
  const holds = new Map<FakeRoute, Array<{ arrived: () => void; released: Promise<void> }>>();
  let nextCommentId = 1000;

  /** The injected failure answer for `route`, if one is pending and is due `when`. */
  function failure(route: FakeRoute, when: "before" | "after" = "before"): Response | undefined {
    const f = failures.get(route);
    if (!f || f.times <= 0 || f.afterEffect !== (when === "after")) return undefined;
    f.times--;
    return Response.json({ message: `injected ${f.status}` }, {
      status: f.status,
      headers: f.headers,
    });
  }

  async function held(route: FakeRoute) {
    const hold = holds.get(route)?.shift();
    if (!hold) return;
    hold.arrived();
    await hold.released;
  }

  const commentJson = (comment: FakeComment) => ({
    id: comment.id,
    body: comment.body,
    user: { login: comment.author ?? "review-bot", type: "User" },
    html_url:
      `https://github.example/${comment.owner}/${comment.repo}/pull/${comment.issueNumber}` +
      `#issuecomment-${comment.id}`,
  });

  const app = new Hono();
  app.use("*", async (c, next) => {
    requests.push({
      method: c.req.method,
      path: c.req.path,
      authorization: c.req.header("authorization") ?? null,
    });
    await next();
  });
  app.get("/user", (c) => c.json({ login: "review-bot", type: "User" }));
  app.get("/repos/:owner/:repo/pulls/:number", async (c) => {
    const { owner, repo, number } = c.req.param();
    const wantsDiff = (c.req.header("accept") ?? "").includes("diff");
    const failed = failure(wantsDiff ? "diff" : "pulls.get");
    if (failed) return failed;
    // A held answer is the pull as it was when the request came (a stale head, say).
    const pull = structuredClone(pulls.get(`${owner}/${repo}#${number}`));
    if (!wantsDiff) await held("pulls.get");
    if (!pull) return c.json({ message: "Not Found" }, 404);
    if (wantsDiff) return c.text(pull.diff, 200, { "content-type": "text/plain; charset=utf-8" });
    return c.json({
      number: pull.number,
      title: pull.title,
      state: pull.state,
      draft: pull.draft,
      head: { sha: pull.headSha, ref: "feature" },
      base: { sha: pull.baseSha, ref: "main" },
      html_url: `https://github.example/${owner}/${repo}/pull/${number}`,
      user: { login: "author" },
    });
  });
  app.post("/repos/:owner/:repo/issues/:number/comments", async (c) => {
    const failed = failure("comment");
    if (failed) return failed;
    const { owner, repo, number } = c.req.param();
    const { body } = await c.req.json<{ body: string }>();
    const comment: FakeComment = {
      id: nextCommentId++,
      owner,
      repo,
      issueNumber: Number(number),
      body,
      updatedCount: 0,
    };
    comments.push(comment);
    await held("comment");
    return failure("comment", "after") ?? c.json(commentJson(comment), 201);
  });
  app.get("/repos/:owner/:repo/issues/:number/comments", (c) => {
    const failed = failure("comments.list");
    if (failed) return failed;
    const { owner, repo, number } = c.req.param();
    const perPage = Math.min(100, Number(c.req.query("per_page") ?? 30));
    const page = Math.max(1, Number(c.req.query("page") ?? 1));
    const all = comments.filter((x) =>
      x.owner === owner && x.repo === repo && x.issueNumber === Number(number)
    );
    return c.json(all.slice((page - 1) * perPage, page * perPage).map(commentJson));
  });
  app.patch("/repos/:owner/:repo/issues/comments/:id", async (c) => {
    const failed = failure("comment");
    if (failed) return failed;
    const { id } = c.req.param();
    const comment = comments.find((x) => x.id === Number(id));
    if (!comment) return c.json({ message: "Not Found" }, 404);
    if ((comment.author ?? "review-bot") !== "review-bot") {
      return c.json({ message: "Must have admin rights to Repository." }, 403);
    }
    comment.body = (await c.req.json<{ body: string }>()).body;
    comment.updatedCount++;
    await held("comment");
    return failure("comment", "after") ?? c.json(commentJson(comment));
  });

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    pulls,
    comments,
    requests,
    setPull(pull) {
      const key = `${pull.owner}/${pull.repo}#${pull.number}`;
      const full: FakePull = {
        headSha: "a".repeat(40),
        baseSha: "b".repeat(40),
        title: `Pull ${pull.number}`,
        state: "open",
        draft: false,
        diff: DEFAULT_DIFF,
        ...pulls.get(key),
        ...pull,
      };
      pulls.set(key, full);
      return full;
    },
    failNext(route, status, times = 1, options = {}) {
      const o: FailOptions = "headers" in options || "afterEffect" in options
        ? options as FailOptions
        : { headers: options as Record<string, string> };
      failures.set(route, {
        status,
        times,
        headers: o.headers ?? {},
        afterEffect: o.afterEffect ?? false,
      });
    },
    holdNext(route) {
      let arrived!: () => void;
      let release!: () => void;
      const started = new Promise<void>((r) => arrived = r);
      const released = new Promise<void>((r) => release = r);
      holds.set(route, [...(holds.get(route) ?? []), { arrived, released }]);
      return { started, release };
    },
    close: () => server.shutdown(),
  });
}
