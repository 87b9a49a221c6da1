/**
 * A fake GitHub REST API on loopback: pulls (JSON and diff), issue comments, injected failures.
 */
import { Hono } from "hono";

export interface FakePull {
  owner: string;
  repo: string;
  number: number;
  headSha: string;
  baseSha: string;
  title: string;
  state: "open" | "closed";
  draft: boolean;
  diff: string;
}

export interface FakeComment {
  id: number;
  owner: string;
  repo: string;
  issueNumber: number;
  body: string;
  updatedCount: number;
}

type Route = "pulls.get" | "diff" | "comment";

export interface FakeGitHub {
  url: string;
  pulls: Map<string, FakePull>;
  comments: FakeComment[];
  requests: Array<{ method: string; path: string; authorization: string | null }>;
  setPull(pull: Partial<FakePull> & { owner: string; repo: string; number: number }): FakePull;
  failNext(route: Route, status: number, times?: number): void;
  close(): Promise<void>;
}

const DEFAULT_DIFF = [
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

export function startFakeGitHub(): Promise<FakeGitHub> {
  const pulls = new Map<string, FakePull>();
  const comments: FakeComment[] = [];
  const requests: FakeGitHub["requests"] = [];
  const failures = new Map<Route, { status: number; times: number }>();
  let nextCommentId = 1000;

  function failure(route: Route): number | undefined {
    const f = failures.get(route);
    if (!f || f.times <= 0) return undefined;
    f.times--;
    return f.status;
  }

  const app = new Hono();
  app.use("*", async (c, next) => {
    requests.push({
      method: c.req.method,
      path: c.req.path,
      authorization: c.req.header("authorization") ?? null,
    });
    await next();
  });
  app.get("/repos/:owner/:repo/pulls/:number", (c) => {
    const { owner, repo, number } = c.req.param();
    const wantsDiff = (c.req.header("accept") ?? "").includes("diff");
    const failed = failure(wantsDiff ? "diff" : "pulls.get");
    if (failed) return c.json({ message: `injected ${failed}` }, failed as 500);
    const pull = pulls.get(`${owner}/${repo}#${number}`);
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
    if (failed) return c.json({ message: `injected ${failed}` }, failed as 500);
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
    return c.json({
      id: comment.id,
      body,
      html_url: `https://github.example/${owner}/${repo}/pull/${number}#issuecomment-${comment.id}`,
    }, 201);
  });
  app.patch("/repos/:owner/:repo/issues/comments/:id", async (c) => {
    const failed = failure("comment");
    if (failed) return c.json({ message: `injected ${failed}` }, failed as 500);
    const { owner, repo, id } = c.req.param();
    const comment = comments.find((x) => x.id === Number(id));
    if (!comment) return c.json({ message: "Not Found" }, 404);
    comment.body = (await c.req.json<{ body: string }>()).body;
    comment.updatedCount++;
    return c.json({
      id: comment.id,
      body: comment.body,
      html_url:
        `https://github.example/${owner}/${repo}/pull/${comment.issueNumber}#issuecomment-${comment.id}`,
    });
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
    failNext(route, status, times = 1) {
      failures.set(route, { status, times });
    },
    close: () => server.shutdown(),
  });
}
