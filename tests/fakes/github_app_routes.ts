/**
 * The fake GitHub's GitHub App routes: installation tokens and lookups (app JWT), pull request
 * reviews checked against the pull's diff, and GraphQL `minimizeComment`.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import type { FakeComment, FakePull, FakeRoute } from "./github.ts";
import { type FakeAppAuth, type Identity, TOKEN_USER } from "./github_auth.ts";
import {
  type Body,
  ghError,
  isoSeconds,
  notFound,
  paged,
  parseDiff,
  type PostedReviewComment,
  readJson,
  reviewCommentError,
  unprocessable,
  userJson,
} from "./github_shapes.ts";
import type {
  FakeCheckRun,
  FakeInstallation,
  FakeReaction,
  FakeReview,
  FakeReviewComment,
  FakeStatus,
} from "./github_types.ts";

/** What the route modules share with `startFakeGitHub`. */
export interface FakeContext {
  pulls: Map<string, FakePull>;
  comments: FakeComment[];
  reviews: FakeReview[];
  checkRuns: FakeCheckRun[];
  statuses: FakeStatus[];
  reactions: FakeReaction[];
  /** File texts by `${owner}/${repo}@${ref}:${path}`. */
  files: Map<string, string>;
  auth: FakeAppAuth;
  /** Whether check runs are refused to everyone. */
  checksForbidden(): boolean;
  /** The injected failure answer for `route`, if one is due `when`. */
  failure(route: FakeRoute, when?: "before" | "after"): Response | undefined;
  /** Waits while a `holdNext(route)` holds this request. */
  held(route: FakeRoute): Promise<void>;
  /** A new id for reviews, check runs, statuses, reactions… */
  nextId(): number;
}

/** Who the request acts as (its token was already accepted). */
export const who = (ctx: FakeContext, c: Context): Identity =>
  ctx.auth.identify(c.req.header("authorization")) ?? TOKEN_USER;

/** The permissions installation tokens carry. */
export const PERMISSIONS: Record<string, string> = {
  checks: "write",
  contents: "read",
  issues: "write",
  metadata: "read",
  pull_requests: "write",
  statuses: "write",
};

/** The app object (`GET /app`, a check run's `app`). */
export function appJson(auth: FakeAppAuth): Body {
  return {
    id: auth.appId,
    slug: auth.slug,
    node_id: `A_kwDO${auth.appId}`,
    client_id: `Iv1.${auth.slug}`,
    owner: { login: "ai-review-org", id: 1, type: "Organization" },
    name: "AI Review",
    description: "",
    external_url: "https://ai-review.example",
    html_url: `https://github.example/apps/${auth.slug}`,
    created_at: "2024-01-01T00:00:00Z",
    updated_at: "2024-01-01T00:00:00Z",
    permissions: PERMISSIONS,
    events: ["pull_request", "issue_comment", "check_run"],
  };
}

function installationJson(origin: string, auth: FakeAppAuth, i: FakeInstallation): Body {
  return {
    id: i.id,
    account: { login: i.owner, id: i.id * 10, type: "Organization" },
    app_id: auth.appId,
    app_slug: auth.slug,
    target_id: i.id * 10,
    target_type: "Organization",
    repository_selection: i.repos ? "selected" : "all",
    access_tokens_url: `${origin}/app/installations/${i.id}/access_tokens`,
    repositories_url: `${origin}/installation/repositories`,
    html_url: `https://github.example/organizations/${i.owner}/settings/installations/${i.id}`,
    permissions: PERMISSIONS,
    events: ["pull_request", "issue_comment", "check_run"],
    created_at: "2024-01-01T00:00:00Z",
    updated_at: "2024-01-01T00:00:00Z",
    single_file_name: null,
    suspended_at: null,
    suspended_by: null,
  };
}

function reviewJson(origin: string, r: FakeReview): Body {
  const html = `https://github.example/${r.owner}/${r.repo}/pull/${r.pullNumber}` +
    `#pullrequestreview-${r.id}`;
  const pull = `${origin}/repos/${r.owner}/${r.repo}/pulls/${r.pullNumber}`;
  return {
    id: r.id,
    node_id: r.nodeId,
    user: userJson(r.author, r.authorType),
    body: r.body,
    state: r.state,
    html_url: html,
    pull_request_url: pull,
    author_association: "NONE",
    _links: { html: { href: html }, pull_request: { href: pull } },
    ...(r.state === "PENDING" ? {} : { submitted_at: r.submittedAt }),
    commit_id: r.commitId,
  };
}

const REVIEW_STATES: Record<string, string> = {
  APPROVE: "APPROVED",
  REQUEST_CHANGES: "CHANGES_REQUESTED",
  COMMENT: "COMMENTED",
};

const CLASSIFIERS = [
  "SPAM",
  "ABUSE",
  "OFF_TOPIC",
  "OUTDATED",
  "DUPLICATE",
  "RESOLVED",
  "LOW_QUALITY",
];

/** The GraphQL id of an issue comment. */
export const commentNodeId = (id: number): string => `IC_kwDOfake${id}`;

/** Registers the app, review and GraphQL routes. */
export function registerAppRoutes(app: Hono, ctx: FakeContext): void {
  const origin = (c: Context) => new URL(c.req.url).origin;

  app.get("/app", async (c) => {
    const failed = ctx.failure("app");
    if (failed) return failed;
    const error = await ctx.auth.jwtError(c.req.header("authorization"));
    if (error) return ghError(401, error);
    await ctx.held("app");
    return ctx.failure("app", "after") ??
      c.json({ ...appJson(ctx.auth), installations_count: ctx.auth.installations.size });
  });

  app.post("/app/installations/:id/access_tokens", async (c) => {
    const failed = ctx.failure("app.token");
    if (failed) return failed;
    const error = await ctx.auth.jwtError(c.req.header("authorization"));
    if (error) return ghError(401, error);
    const installation = ctx.auth.installations.get(Number(c.req.param("id")));
    if (!installation?.active) return notFound();
    const body = await readJson(c.req.raw, true);
    if (body instanceof Response) return body;
    const issued = ctx.auth.issue(installation.id);
    await ctx.held("app.token");
    const permissions = body.permissions && typeof body.permissions === "object"
      ? body.permissions
      : PERMISSIONS;
    return ctx.failure("app.token", "after") ?? c.json({
      token: issued.token,
      expires_at: issued.expiresAt,
      permissions,
      repository_selection: installation.repos ? "selected" : "all",
      ...(installation.repos
        ? {
          repositories: installation.repos.map((name) => ({
            id: installation.id * 1000 + installation.repos!.indexOf(name) + 1,
            name,
            full_name: `${installation.owner}/${name}`,
          })),
        }
        : {}),
    }, 201);
  });

  app.get("/repos/:owner/:repo/installation", async (c) => {
    const failed = ctx.failure("app.installation");
    if (failed) return failed;
    const error = await ctx.auth.jwtError(c.req.header("authorization"));
    if (error) return ghError(401, error);
    const { owner, repo } = c.req.param();
    const installation = [...ctx.auth.installations.values()].find((i) =>
      i.active && i.owner.toLowerCase() === owner.toLowerCase() &&
      (!i.repos || i.repos.some((r) => r.toLowerCase() === repo.toLowerCase()))
    );
    if (!installation) return notFound();
    await ctx.held("app.installation");
    return ctx.failure("app.installation", "after") ??
      c.json(installationJson(origin(c), ctx.auth, installation));
  });

  app.get("/repos/:owner/:repo/pulls/:number/reviews", (c) => {
    const failed = ctx.failure("reviews.list");
    if (failed) return failed;
    const { owner, repo, number } = c.req.param();
    if (!ctx.pulls.has(`${owner}/${repo}#${number}`)) return notFound();
    const all = ctx.reviews.filter((r) =>
      r.owner === owner && r.repo === repo && r.pullNumber === Number(number)
    );
    const page = paged(c.req.url, all);
    return c.json(page.items.map((r) => reviewJson(origin(c), r)), 200, page.headers);
  });

  app.post("/repos/:owner/:repo/pulls/:number/reviews", async (c) => {
    const failed = ctx.failure("review");
    if (failed) return failed;
    const { owner, repo, number } = c.req.param();
    const pull = ctx.pulls.get(`${owner}/${repo}#${number}`);
    if (!pull) return notFound();
    const body = await readJson(c.req.raw);
    if (body instanceof Response) return body;
    const event = body.event as string | undefined;
    if (event !== undefined && !(event in REVIEW_STATES)) {
      return unprocessable(
        `Variable $event of type PullRequestReviewEvent was provided invalid value`,
      );
    }
    const text = typeof body.body === "string" ? body.body : "";
    const posted = (Array.isArray(body.comments) ? body.comments : []) as PostedReviewComment[];
    if (event === "REQUEST_CHANGES" && !text || event === "COMMENT" && !text && !posted.length) {
      return unprocessable(`Body is required for ${event} events`);
    }
    const me = who(ctx, c);
    const pending = ctx.reviews.some((r) =>
      r.state === "PENDING" && r.owner === owner && r.repo === repo &&
      r.pullNumber === pull.number && r.author === me.login
    );
    if (event === undefined && pending) {
      return unprocessable("User can only have one pending review per pull request");
    }
    const files = parseDiff(pull.diff);
    for (const comment of posted) {
      const error = reviewCommentError(files, comment ?? {});
      if (error) return unprocessable(error);
    }
    const id = ctx.nextId();
    const review: FakeReview = {
      id,
      nodeId: `PRR_kwDOfake${id}`,
      owner,
      repo,
      pullNumber: pull.number,
      commitId: typeof body.commit_id === "string" ? body.commit_id : pull.headSha,
      body: text,
      ...(event === undefined ? {} : { event }),
      state: event === undefined ? "PENDING" : REVIEW_STATES[event],
      comments: posted.map((p): FakeReviewComment => ({
        id: ctx.nextId(),
        path: p.path as string,
        line: p.line as number,
        side: (p.side ?? "RIGHT") as "LEFT" | "RIGHT",
        ...(typeof p.start_line === "number"
          ? {
            startLine: p.start_line,
            startSide: (p.start_side ?? p.side ?? "RIGHT") as "LEFT" | "RIGHT",
          }
          : {}),
        body: p.body as string,
      })),
      author: me.login,
      authorType: me.type,
      submittedAt: isoSeconds(),
    };
    ctx.reviews.push(review);
    await ctx.held("review");
    return ctx.failure("review", "after") ?? c.json(reviewJson(origin(c), review));
  });

  app.post("/graphql", async (c) => {
    const failed = ctx.failure("graphql");
    if (failed) return failed;
    if (!c.req.header("authorization")) {
      return ghError(401, "This endpoint requires you to be authenticated.");
    }
    const body = await readJson(c.req.raw);
    if (body instanceof Response) return body;
    const query = typeof body.query === "string" ? body.query : "";
    const variables = (body.variables ?? {}) as Record<string, unknown>;
    const mutation = /\b(un)?minimizeComment\s*\(/.exec(query);
    if (!mutation) {
      return c.json({
        errors: [{ message: "The fake GitHub answers only minimizeComment/unminimizeComment" }],
      });
    }
    const field = mutation[1] ? "unminimizeComment" : "minimizeComment";
    // `input: $input` (an object variable) or `input: {subjectId: …, classifier: …}`.
    const inputVariable = /\binput\s*:\s*\$(\w+)/.exec(query)?.[1];
    const input = inputVariable ? (variables[inputVariable] ?? {}) as Record<string, unknown> : {};
    const argument = (name: string): unknown => {
      if (inputVariable) return input[name];
      const m = new RegExp(
        `(?<![$\\w])${name}\\s*:\\s*(?:\\$(\\w+)|"((?:[^"\\\\]|\\\\.)*)"|(\\w+))`,
      ).exec(query);
      if (!m) return undefined;
      if (m[1] !== undefined) return variables[m[1]];
      return m[2] !== undefined ? JSON.parse(`"${m[2]}"`) : m[3];
    };
    const subjectId = argument("subjectId");
    const classifier = argument("classifier");
    if (typeof subjectId !== "string") {
      return c.json({
        errors: [{
          message: `Argument 'subjectId' on InputObject '${
            field === "minimizeComment" ? "MinimizeCommentInput" : "UnminimizeCommentInput"
          }' is required. Expected type ID!`,
        }],
      });
    }
    if (field === "minimizeComment" && !CLASSIFIERS.includes(String(classifier))) {
      return c.json({
        errors: [{
          message: `Argument 'classifier' on InputObject 'MinimizeCommentInput' has an invalid ` +
            `value (${classifier}). Expected type 'ReportedContentClassifiers!'.`,
        }],
      });
    }
    const subject: { minimized?: { classifier: string } } | undefined = ctx.reviews.find((r) =>
      r.nodeId === subjectId
    ) ??
      ctx.comments.find((x) => commentNodeId(x.id) === subjectId);
    if (!subject) {
      return c.json({
        data: null,
        errors: [{
          type: "NOT_FOUND",
          path: [field],
          locations: [{ line: 1, column: 1 }],
          message: `Could not resolve to a node with the global id of '${subjectId}'`,
        }],
      });
    }
    if (field === "minimizeComment") subject.minimized = { classifier: String(classifier) };
    else delete subject.minimized;
    await ctx.held("graphql");
    return ctx.failure("graphql", "after") ?? c.json({
      data: field === "minimizeComment"
        ? {
          minimizeComment: {
            minimizedComment: {
              isMinimized: true,
              minimizedReason: String(classifier).toLowerCase(),
            },
          },
        }
        : { unminimizeComment: { unminimizedComment: { isMinimized: false } } },
    });
  });
}
