/**
 * The fake GitHub's check runs, commit statuses, repository contents and comment reactions.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { appJson, type FakeContext, who } from "./github_app_routes.ts";
import {
  base64,
  blobSha,
  type Body,
  ghError,
  isoSeconds,
  notFound,
  paged,
  readJson,
  stableId,
  userJson,
  validationFailed,
} from "./github_shapes.ts";
import type { FakeAnnotation, FakeCheckRun, FakeStatus } from "./github_types.ts";

const CHECK_STATUSES = ["queued", "in_progress", "completed", "waiting", "requested", "pending"];
const CONCLUSIONS = [
  "action_required",
  "cancelled",
  "failure",
  "neutral",
  "success",
  "skipped",
  "stale",
  "timed_out",
];
const LEVELS = ["notice", "warning", "failure"];
const REACTIONS = ["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];
const STATUS_STATES = ["error", "failure", "pending", "success"];
/** GitHub answers file contents up to 1 MB inline; larger files come with `encoding: "none"`. */
const INLINE_LIMIT = 1024 * 1024;

/** The key of a file in `FakeContext.files`. */
export const fileKey = (owner: string, repo: string, ref: string, path: string): string =>
  `${owner}/${repo}@${ref.replace(/^refs\/(?:heads|tags)\//, "")}:${
    path.replace(/^\/+|\/+$/g, "")
  }`;

/** The checks API's schema error: 422 `Invalid request.\n\n<detail>`. */
const invalid = (detail: string) => ghError(422, `Invalid request.\n\n${detail}`);

const member = (field: string, value: unknown, list: string[]) =>
  invalid(
    `For 'properties/${field}', ${JSON.stringify(value)} is not a member of ` +
      `${JSON.stringify(list)}.`,
  );

/** Why GitHub would refuse this check-run create or update body. */
function checkRunError(body: Body, existing?: FakeCheckRun): Response | undefined {
  for (const field of existing ? [] : ["name", "head_sha"]) {
    if (typeof body[field] !== "string" || body[field] === "") {
      return invalid(`"${field}" wasn't supplied.`);
    }
  }
  if (existing && body.name !== undefined && (typeof body.name !== "string" || !body.name)) {
    return invalid(`"name" wasn't supplied.`);
  }
  if (body.status !== undefined && !CHECK_STATUSES.includes(String(body.status))) {
    return member("status", body.status, CHECK_STATUSES);
  }
  const conclusion = body.conclusion;
  if (
    conclusion !== undefined && conclusion !== null && !CONCLUSIONS.includes(String(conclusion))
  ) {
    return member("conclusion", conclusion, CONCLUSIONS);
  }
  if (
    (body.status === "completed" || body.completed_at !== undefined) && !conclusion &&
    !existing?.conclusion
  ) {
    return invalid(`"conclusion" wasn't supplied.`);
  }
  if (body.output === undefined) return undefined;
  const output = body.output as Body | null;
  if (!output || typeof output !== "object") return invalid(`"output" is not an object.`);
  for (const field of ["title", "summary"]) {
    if (typeof output[field] !== "string") return invalid(`"${field}" wasn't supplied.`);
  }
  for (const field of ["summary", "text"]) {
    if (typeof output[field] === "string" && (output[field] as string).length > 65535) {
      return invalid(`For 'properties/${field}', it is longer than 65535 characters.`);
    }
  }
  if (output.annotations === undefined) return undefined;
  if (!Array.isArray(output.annotations)) return invalid(`"annotations" is not an array.`);
  if (output.annotations.length > 50) {
    return invalid(
      `For 'properties/annotations', ${output.annotations.length} items are more than the ` +
        `maximum of 50 annotations per request.`,
    );
  }
  for (const a of output.annotations as Body[]) {
    for (const field of ["path", "message"]) {
      if (typeof a?.[field] !== "string") return invalid(`"${field}" wasn't supplied.`);
    }
    for (const field of ["start_line", "end_line"]) {
      if (!Number.isInteger(a[field])) return invalid(`"${field}" wasn't supplied.`);
    }
    if (!LEVELS.includes(String(a.annotation_level))) {
      return member("annotation_level", a.annotation_level, LEVELS);
    }
    if (
      (a.start_column !== undefined || a.end_column !== undefined) &&
      a.start_line !== a.end_line
    ) {
      return invalid(
        "start_column and end_column are only allowed when start_line equals end_line.",
      );
    }
  }
  return undefined;
}

/** Applies a valid create/update body to `run` (annotations append, like GitHub). */
function applyCheckRun(run: FakeCheckRun, body: Body) {
  if (typeof body.name === "string") run.name = body.name;
  if (typeof body.external_id === "string") run.externalId = body.external_id;
  if (typeof body.details_url === "string") run.detailsUrl = body.details_url;
  if (typeof body.started_at === "string") run.startedAt = body.started_at;
  if (typeof body.status === "string") run.status = body.status;
  if (typeof body.conclusion === "string") {
    run.conclusion = body.conclusion;
    run.status = "completed";
  }
  if (run.status === "completed") {
    run.completedAt = typeof body.completed_at === "string"
      ? body.completed_at
      : run.completedAt ?? isoSeconds();
  }
  const output = body.output as Body | undefined;
  if (output) {
    run.output = {
      title: output.title as string,
      summary: output.summary as string,
      text: typeof output.text === "string" ? output.text : null,
    };
    run.annotations.push(...((output.annotations ?? []) as FakeAnnotation[]));
  }
}

function checkRunJson(c: Context, ctx: FakeContext, run: FakeCheckRun): Body {
  const origin = new URL(c.req.url).origin;
  const api = `${origin}/repos/${run.owner}/${run.repo}/check-runs/${run.id}`;
  const html = `https://github.example/${run.owner}/${run.repo}/runs/${run.id}`;
  const repoJson = { id: stableId(`${run.owner}/${run.repo}`), name: run.repo };
  return {
    id: run.id,
    node_id: `CR_kwDOfake${run.id}`,
    head_sha: run.headSha,
    external_id: run.externalId,
    url: api,
    html_url: html,
    details_url: run.detailsUrl ?? "https://ai-review.example",
    status: run.status,
    conclusion: run.conclusion,
    started_at: run.startedAt,
    completed_at: run.completedAt,
    output: {
      ...run.output,
      annotations_count: run.annotations.length,
      annotations_url: `${api}/annotations`,
    },
    name: run.name,
    check_suite: { id: stableId(`${run.owner}/${run.repo}@${run.headSha}`) },
    app: appJson(ctx.auth),
    pull_requests: [...ctx.pulls.values()]
      .filter((p) =>
        p.owner === run.owner && p.repo === run.repo && p.headSha === run.headSha &&
        p.state === "open"
      )
      .map((p) => ({
        url: `${origin}/repos/${p.owner}/${p.repo}/pulls/${p.number}`,
        id: stableId(`${p.owner}/${p.repo}#${p.number}`),
        number: p.number,
        head: { ref: "feature", sha: p.headSha, repo: repoJson },
        base: { ref: "main", sha: p.baseSha, repo: repoJson },
      })),
  };
}

function statusJson(c: Context, s: FakeStatus): Body {
  return {
    url: `${new URL(c.req.url).origin}/repos/${s.owner}/${s.repo}/statuses/${s.sha}`,
    avatar_url: "https://github.example/avatars/ai-review.png",
    id: s.id,
    node_id: `SC_kwDOfake${s.id}`,
    state: s.state,
    description: s.description,
    target_url: s.targetUrl,
    context: s.context,
    created_at: s.createdAt,
    updated_at: s.createdAt,
    creator: userJson(s.author, s.author.endsWith("[bot]") ? "Bot" : "User"),
  };
}

/** Registers the check-run, status, contents and reaction routes. */
export function registerChecksRoutes(app: Hono, ctx: FakeContext): void {
  /** A personal token cannot write check runs; `checksForbidden(true)` refuses everyone. */
  const refusal = (c: Context) => {
    const me = who(ctx, c);
    if (!ctx.checksForbidden() && (!ctx.auth.enabled || me.installationId !== undefined)) {
      return undefined;
    }
    return ghError(
      403,
      me.installationId === undefined
        ? "Resource not accessible by personal access token"
        : "Resource not accessible by integration",
    );
  };

  app.post("/repos/:owner/:repo/check-runs", async (c) => {
    const failed = ctx.failure("checks.create") ?? refusal(c);
    if (failed) return failed;
    const body = await readJson(c.req.raw);
    if (body instanceof Response) return body;
    const error = checkRunError(body);
    if (error) return error;
    const run: FakeCheckRun = {
      id: ctx.nextId(),
      owner: c.req.param("owner"),
      repo: c.req.param("repo"),
      name: body.name as string,
      headSha: body.head_sha as string,
      externalId: "",
      status: "queued",
      conclusion: null,
      startedAt: isoSeconds(),
      completedAt: null,
      detailsUrl: null,
      output: { title: null, summary: null, text: null },
      annotations: [],
      updates: 0,
      author: who(ctx, c).login,
    };
    applyCheckRun(run, body);
    ctx.checkRuns.push(run);
    await ctx.held("checks.create");
    return ctx.failure("checks.create", "after") ?? c.json(checkRunJson(c, ctx, run), 201);
  });

  app.patch("/repos/:owner/:repo/check-runs/:id", async (c) => {
    const failed = ctx.failure("checks.update") ?? refusal(c);
    if (failed) return failed;
    const { owner, repo, id } = c.req.param();
    const run = ctx.checkRuns.find((r) =>
      r.id === Number(id) && r.owner === owner && r.repo === repo
    );
    if (!run) return notFound();
    const body = await readJson(c.req.raw);
    if (body instanceof Response) return body;
    const error = checkRunError(body, run);
    if (error) return error;
    applyCheckRun(run, body);
    run.updates++;
    await ctx.held("checks.update");
    return ctx.failure("checks.update", "after") ?? c.json(checkRunJson(c, ctx, run));
  });

  app.get("/repos/:owner/:repo/commits/:ref/check-runs", (c) => {
    const failed = ctx.failure("checks.list");
    if (failed) return failed;
    const { owner, repo, ref } = c.req.param();
    const name = c.req.query("check_name");
    const status = c.req.query("status");
    const filter = c.req.query("filter") ?? "latest";
    if (filter !== "latest" && filter !== "all") return member("filter", filter, ["latest", "all"]);
    let runs = ctx.checkRuns
      .filter((r) =>
        r.owner === owner && r.repo === repo && r.headSha === ref &&
        (name === undefined || r.name === name) && (status === undefined || r.status === status)
      )
      .sort((a, b) => b.id - a.id);
    if (filter === "latest") {
      runs = runs.filter((r, i) => runs.findIndex((x) => x.name === r.name) === i);
    }
    const page = paged(c.req.url, runs);
    return c.json(
      {
        total_count: runs.length,
        check_runs: page.items.map((r) => checkRunJson(c, ctx, r)),
      },
      200,
      page.headers,
    );
  });

  app.post("/repos/:owner/:repo/statuses/:sha", async (c) => {
    const failed = ctx.failure("status");
    if (failed) return failed;
    const body = await readJson(c.req.raw);
    if (body instanceof Response) return body;
    if (!STATUS_STATES.includes(String(body.state))) {
      return validationFailed("Status", "state", "state is not included in the list");
    }
    for (const field of ["target_url", "description", "context"]) {
      if (body[field] !== undefined && body[field] !== null && typeof body[field] !== "string") {
        return validationFailed("Status", field, `${field} is not a string`);
      }
    }
    const description = (body.description ?? null) as string | null;
    if (description !== null && description.length > 140) {
      return validationFailed(
        "Status",
        "description",
        "description is too long (maximum is 140 characters)",
      );
    }
    const status: FakeStatus = {
      id: ctx.nextId(),
      owner: c.req.param("owner"),
      repo: c.req.param("repo"),
      sha: c.req.param("sha"),
      state: body.state as string,
      targetUrl: (body.target_url ?? null) as string | null,
      description,
      context: (body.context ?? "default") as string,
      author: who(ctx, c).login,
      createdAt: isoSeconds(),
    };
    ctx.statuses.push(status);
    await ctx.held("status");
    return ctx.failure("status", "after") ?? c.json(statusJson(c, status), 201);
  });

  const contents = async (c: Context) => {
    const failed = ctx.failure("contents");
    if (failed) return failed;
    const owner = c.req.param("owner") ?? "", repo = c.req.param("repo") ?? "";
    const path = (c.req.param("path") ?? "").replace(/^\/+|\/+$/g, "");
    const ref = c.req.query("ref") || "main";
    const origin = new URL(c.req.url).origin;
    const prefix = fileKey(owner, repo, ref, "");
    const links = (p: string, type: string, sha: string) => {
      const self = `${origin}/repos/${owner}/${repo}/contents/${p}?ref=${ref}`;
      const git = `${origin}/repos/${owner}/${repo}/git/${
        type === "dir" ? "trees" : "blobs"
      }/${sha}`;
      const html = `https://github.example/${owner}/${repo}/${
        type === "dir" ? "tree" : "blob"
      }/${ref}/${p}`;
      return {
        url: self,
        html_url: html,
        git_url: git,
        download_url: type === "dir"
          ? null
          : `https://raw.github.example/${owner}/${repo}/${ref}/${p}`,
        _links: { self, git, html },
      };
    };
    const text = ctx.files.get(prefix + path);
    if (text !== undefined) {
      await ctx.held("contents");
      const late = ctx.failure("contents", "after");
      if (late) return late;
      if (/vnd\.github(?:\.v3)?\.raw/.test(c.req.header("accept") ?? "")) {
        return c.body(text, 200, { "content-type": "text/plain; charset=utf-8" });
      }
      const bytes = new TextEncoder().encode(text);
      const sha = await blobSha(bytes);
      const inline = bytes.length <= INLINE_LIMIT;
      return c.json({
        type: "file",
        encoding: inline ? "base64" : "none",
        size: bytes.length,
        name: path.split("/").pop(),
        path,
        content: inline
          ? (base64(bytes).match(/.{1,60}/g) ?? []).map((l) => `${l}\n`).join("")
          : "",
        sha,
        ...links(path, "file", sha),
      });
    }
    const under = path ? `${path}/` : "";
    const children = new Map<string, "file" | "dir">();
    for (const key of ctx.files.keys()) {
      if (!key.startsWith(prefix + under)) continue;
      const [name, ...rest] = key.slice(prefix.length + under.length).split("/");
      children.set(name, rest.length ? "dir" : "file");
    }
    if (!children.size) return notFound();
    await ctx.held("contents");
    const entries = await Promise.all(
      [...children].sort(([a], [b]) => a < b ? -1 : 1).map(async ([name, type]) => {
        const p = under + name;
        const bytes = new TextEncoder().encode(ctx.files.get(prefix + p) ?? "");
        const sha = type === "file" ? await blobSha(bytes) : await blobSha(
          new TextEncoder().encode(`tree:${prefix}${p}`),
        );
        return {
          type,
          name,
          path: p,
          sha,
          size: type === "file" ? bytes.length : 0,
          ...links(p, type, sha),
        };
      }),
    );
    return ctx.failure("contents", "after") ?? c.json(entries);
  };
  app.get("/repos/:owner/:repo/contents", contents);
  app.get("/repos/:owner/:repo/contents/:path{.+}", contents);

  app.post("/repos/:owner/:repo/issues/comments/:id/reactions", async (c) => {
    const failed = ctx.failure("reaction");
    if (failed) return failed;
    const { owner, repo, id } = c.req.param();
    const comment = ctx.comments.find((x) =>
      x.id === Number(id) && x.owner === owner && x.repo === repo
    );
    if (!comment) return notFound();
    const body = await readJson(c.req.raw);
    if (body instanceof Response) return body;
    if (!REACTIONS.includes(String(body.content))) {
      return validationFailed("Reaction", "content", "content is not included in the list");
    }
    const me = who(ctx, c);
    let reaction = ctx.reactions.find((r) =>
      r.commentId === comment.id && r.content === body.content && r.user === me.login
    );
    const created = !reaction;
    if (!reaction) {
      reaction = {
        id: ctx.nextId(),
        owner,
        repo,
        commentId: comment.id,
        content: body.content as string,
        user: me.login,
        userType: me.type,
      };
      ctx.reactions.push(reaction);
    }
    await ctx.held("reaction");
    return ctx.failure("reaction", "after") ?? c.json({
      id: reaction.id,
      node_id: `REA_lADOfake${reaction.id}`,
      user: userJson(reaction.user, reaction.userType),
      content: reaction.content,
      created_at: isoSeconds(),
    }, created ? 201 : 200);
  });
}
