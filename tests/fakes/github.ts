/**
 * A fake GitHub REST API on loopback: pulls (JSON and diff), issue comments, injected failures,
 * and what a GitHub App reviewer uses: app JWTs and installation tokens, pull request reviews,
 * GraphQL `minimizeComment`, check runs, commit statuses, contents and reactions, in the shapes
 * GitHub documents. A Hono app served by `Deno.serve` on 127.0.0.1 and a free port; every test
 * starts and closes its own.
 *
 * @module
 */
import { Hono } from "hono";
import { commentNodeId, type FakeContext, registerAppRoutes } from "./github_app_routes.ts";
import { FakeAppAuth, TOKEN_USER } from "./github_auth.ts";
import { fileKey, registerChecksRoutes } from "./github_checks_routes.ts";
import { ghError, notFound, paged, userJson } from "./github_shapes.ts";
import type {
  AddCommentOptions,
  FakeAppOptions,
  FakeCheckRun,
  FakeInstallation,
  FakeReaction,
  FakeReview,
  FakeStatus,
  IssuedToken,
} from "./github_types.ts";

export type * from "./github_types.ts";

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
  /** Who wrote it (`review-bot`, the token's user, unless a test adds a stranger's comment;
   * `<slug>[bot]` when written with an installation token). */
  author?: string;
  /** The author's type (default `User`; `Bot` for an installation token or a `…[bot]` login). */
  authorType?: "User" | "Bot";
  /** Set by the GraphQL `minimizeComment` mutation (its node id is `IC_kwDOfake<id>`). */
  minimized?: { classifier: string };
}

/** Routes failures can be injected into (`comment` covers both create and update). */
export type FakeRoute =
  | "pulls.get"
  | "diff"
  | "comment"
  | "comments.list"
  /** `GET /app` (app JWT). */
  | "app"
  /** `POST /app/installations/{id}/access_tokens` (app JWT). */
  | "app.token"
  /** `GET /repos/{owner}/{repo}/installation` (app JWT). */
  | "app.installation"
  /** `POST /repos/{owner}/{repo}/pulls/{n}/reviews`. */
  | "review"
  /** `GET /repos/{owner}/{repo}/pulls/{n}/reviews`. */
  | "reviews.list"
  /** `POST /graphql`. */
  | "graphql"
  /** `POST /repos/{owner}/{repo}/check-runs`. */
  | "checks.create"
  /** `PATCH /repos/{owner}/{repo}/check-runs/{id}`. */
  | "checks.update"
  /** `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`. */
  | "checks.list"
  /** `POST /repos/{owner}/{repo}/statuses/{sha}`. */
  | "status"
  /** `GET /repos/{owner}/{repo}/contents/{path}`. */
  | "contents"
  /** `POST /repos/{owner}/{repo}/issues/comments/{id}/reactions`. */
  | "reaction";

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
  /** Adds a comment someone else wrote (ids continue the fake's own). */
  addComment(comment: AddCommentOptions): FakeComment;
  /**
   * Turns on app mode: `POST /app/installations/{id}/access_tokens` and
   * `GET /repos/{o}/{r}/installation` take an RS256 JWT by this key; `ghs_` tokens must be issued
   * and live (else 401 `Bad credentials`); installation tokens act as `<slug>[bot]`; only they may
   * write check runs. Throws for a PEM that is not a public key.
   */
  enableApp(options: FakeAppOptions): void;
  /** Installs the app on `owner` (all its repositories, or only `repos`). */
  install(owner: string, installationId: number, repos?: string[]): FakeInstallation;
  /** Uninstalls: no new tokens (404), and its tokens answer 401. */
  uninstall(installationId: number): void;
  /** Installations by id. */
  installations: Map<number, FakeInstallation>;
  /** Every installation token issued, in order (move `expiresAt` to expire one). */
  issuedTokens: IssuedToken[];
  /** Every pull request review, in order, with its inline comments. */
  reviews: FakeReview[];
  /** Every check run, with its updates applied and annotations accumulated. */
  checkRuns: FakeCheckRun[];
  /** `true`: check-run writes answer 403 to every token (default false). */
  checksForbidden(forbidden?: boolean): void;
  /** Every commit status, in order. */
  statuses: FakeStatus[];
  /** Every reaction, in order. */
  reactions: FakeReaction[];
  /** Serves `text` as `path` at `ref` (`main` is what a request without `ref` reads). */
  setFile(owner: string, repo: string, ref: string, path: string, text: string): void;
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
  let nextId = 100_000;
  let checksForbidden = false;
  const auth = new FakeAppAuth();
  const ctx: FakeContext = {
    pulls,
    comments,
    reviews: [],
    checkRuns: [],
    statuses: [],
    reactions: [],
    files: new Map(),
    auth,
    checksForbidden: () => checksForbidden,
    failure,
    held,
    nextId: () => nextId++,
  };
  const who = (authorization: string | undefined) => auth.identify(authorization) ?? TOKEN_USER;

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
    node_id: commentNodeId(comment.id),
    body: comment.body,
    user: userJson(
      comment.author ?? "review-bot",
      comment.authorType ?? (comment.author?.endsWith("[bot]") ? "Bot" : "User"),
    ),
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
  // App mode: an installation token must be issued, live and installed, and reaches only its
  // installation's repositories (GitHub hides the others: 404).
  app.use("*", async (c, next) => {
    const me = auth.identify(c.req.header("authorization"));
    if (!me) return ghError(401, "Bad credentials");
    const repo = /^\/repos\/([^/]+)\/([^/]+)/.exec(c.req.path);
    if (repo && !auth.reaches(me, decodeURIComponent(repo[1]), decodeURIComponent(repo[2]))) {
      return notFound();
    }
    await next();
  });
  app.get("/user", (c) => {
    const me = who(c.req.header("authorization"));
    if (me.installationId !== undefined) {
      return ghError(403, "Resource not accessible by integration");
    }
    return c.json(userJson(me.login, me.type));
  });
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
    const me = who(c.req.header("authorization"));
    const comment: FakeComment = {
      id: nextCommentId++,
      owner,
      repo,
      issueNumber: Number(number),
      body,
      updatedCount: 0,
      ...(me.installationId === undefined ? {} : { author: me.login, authorType: me.type }),
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
    const { headers } = paged(c.req.url, all);
    return c.json(all.slice((page - 1) * perPage, page * perPage).map(commentJson), 200, headers);
  });
  app.patch("/repos/:owner/:repo/issues/comments/:id", async (c) => {
    const failed = failure("comment");
    if (failed) return failed;
    const { id } = c.req.param();
    const comment = comments.find((x) => x.id === Number(id));
    if (!comment) return c.json({ message: "Not Found" }, 404);
    const me = who(c.req.header("authorization"));
    if ((comment.author ?? "review-bot") !== me.login) {
      return c.json({
        message: me.installationId === undefined
          ? "Must have admin rights to Repository."
          : "Resource not accessible by integration",
      }, 403);
    }
    comment.body = (await c.req.json<{ body: string }>()).body;
    comment.updatedCount++;
    await held("comment");
    return failure("comment", "after") ?? c.json(commentJson(comment));
  });
  registerAppRoutes(app, ctx);
  registerChecksRoutes(app, ctx);

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    pulls,
    comments,
    requests,
    installations: auth.installations,
    issuedTokens: auth.issuedTokens,
    reviews: ctx.reviews,
    checkRuns: ctx.checkRuns,
    statuses: ctx.statuses,
    reactions: ctx.reactions,
    addComment(o) {
      const comment: FakeComment = {
        id: nextCommentId++,
        owner: o.owner,
        repo: o.repo,
        issueNumber: o.issueNumber,
        body: o.body,
        updatedCount: 0,
        author: o.author,
        authorType: o.authorType ?? (o.author.endsWith("[bot]") ? "Bot" : "User"),
      };
      comments.push(comment);
      return comment;
    },
    enableApp: (options) => auth.enable(options),
    install: (owner, installationId, repos) => auth.install(owner, installationId, repos),
    uninstall: (installationId) => auth.uninstall(installationId),
    checksForbidden(forbidden = true) {
      checksForbidden = forbidden;
    },
    setFile(owner, repo, ref, path, text) {
      ctx.files.set(fileKey(owner, repo, ref, path), text);
    },
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
