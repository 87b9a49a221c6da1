/**
 * Every GitHub call the service makes, through one client: pulls, diffs, comments, reviews, check
 * runs, commit statuses, file contents, reactions and GraphQL. Requests go through
 * `@octokit/rest` with the throttling and retry plugins (`review/github_octokit.ts`); failures are
 * retryable or final {@link ReviewError}s whose messages never carry a token.
 *
 * Creates (comments, reviews, check runs) are never retried inside the client: an unanswered
 * create may have happened, and the publishing code looks for it before trying again.
 *
 * @module
 */
import type { CheckAnnotation } from "./check_output.ts";
import { truncateDiff } from "./diff.ts";
import type { InlineComment } from "./inline_review.ts";
import { ReviewError } from "./errors.ts";
import { answeredStatus, githubError, malformed } from "./github_errors.ts";
import {
  createOctokitPool,
  type GitHubCredentials,
  type OctokitPoolOptions,
  type RequestScope,
} from "./github_octokit.ts";

export { githubError } from "./github_errors.ts";
export type { GitHubCredentials } from "./github_octokit.ts";

/**
 * What the pipeline needs of a pull request.
 *
 * @example
 * ```ts
 * const pr: PullRequestInfo = {
 *   headSha: "a".repeat(40), baseSha: "b".repeat(40), title: "Fix", state: "open", draft: false,
 * };
 * ```
 */
export interface PullRequestInfo {
  /** Commit sha of the PR head. */
  headSha: string;
  /** Commit sha of the PR base. */
  baseSha: string;
  /** The PR title. */
  title: string;
  /** Merged PRs are `closed`. */
  state: "open" | "closed";
  /** Whether the PR is a draft. */
  draft: boolean;
  /** The PR's description (cut to {@link MAX_PR_BODY_CHARS}). */
  body?: string;
  /** The head branch name. */
  headRef?: string;
}

/** Characters of a PR description kept for the agent's prompt. */
export const MAX_PR_BODY_CHARS = 8_000;

/**
 * The comment operations {@link postOnce}-style publishing needs.
 *
 * @example
 * ```ts
 * const comments: CommentClient = github;
 * ```
 */
export type CommentClient = Pick<
  GitHubClient,
  "getPullRequest" | "getDiff" | "createComment" | "updateComment" | "findComment"
>;

/**
 * The GitHub operations of the service, bound to one credential scope (a token, or the review's
 * App installation). Every failure is a {@link ReviewError} with reason `github_error`.
 *
 * @example
 * ```ts
 * const github: GitHubClient = createGitHubClients({ baseUrl, credentials }).forInstallation(42);
 * const { id } = await github.createComment("octo/app", 12, "body");
 * await github.updateComment("octo/app", id, "new body"); // edits the same comment
 * ```
 */
export interface GitHubClient {
  /** `pulls.get`. */
  getPullRequest(repo: string, pullNumber: number): Promise<PullRequestInfo>;
  /** `pulls.get` in the `diff` media type; diffs over the client's byte bound are cut at a line. */
  getDiff(repo: string, pullNumber: number): Promise<string>;
  /** `issues.createComment`. */
  createComment(repo: string, pullNumber: number, body: string): Promise<PostedComment>;
  /** `issues.updateComment`; `null` when the comment no longer exists (404). */
  updateComment(repo: string, commentId: number, body: string): Promise<PostedComment | null>;
  /**
   * The oldest comment on the pull request that we wrote and whose body starts with `marker`
   * (`issues.listComments`, at most {@link MAX_COMMENT_PAGES} pages of 100), or `null`. "We" is
   * the token's user (`GET /user`, asked once); where that is refused (an App's installation
   * token), a comment by a bot account.
   */
  findComment(repo: string, pullNumber: number, marker: string): Promise<PostedComment | null>;
  /**
   * A file's text at `ref` (`repos.getContent`, raw), or `null` when there is none (404); a file
   * over `maxBytes` is an error (final).
   */
  getFile(repo: string, path: string, ref: string, maxBytes: number): Promise<string | null>;
  /**
   * Our reviews of the pull request (`pulls.listReviews`, at most {@link MAX_REVIEW_PAGES} pages)
   * whose body starts with `markerPrefix`.
   */
  findReviews(repo: string, pullNumber: number, markerPrefix: string): Promise<PostedReview[]>;
  /** `pulls.createReview` with `event: "COMMENT"` (never retried inside the client). */
  createReview(repo: string, pullNumber: number, review: NewReview): Promise<PostedReview>;
  /** GraphQL `minimizeComment` with classifier `OUTDATED`. */
  minimizeOutdated(nodeId: string): Promise<void>;
  /** The check run named `name` on `headSha` whose `external_id` is `externalId`, or `null`. */
  findCheckRun(
    repo: string,
    headSha: string,
    name: string,
    externalId: string,
  ): Promise<PostedCheckRun | null>;
  /** `checks.create` (never retried inside the client). */
  createCheckRun(repo: string, run: CheckRunInput & { headSha: string }): Promise<PostedCheckRun>;
  /** `checks.update`. */
  updateCheckRun(repo: string, checkRunId: number, run: CheckRunInput): Promise<void>;
  /** `repos.createCommitStatus` (the fallback where check runs are refused). */
  createStatus(repo: string, sha: string, status: CommitStatusInput): Promise<void>;
  /** `reactions.createForIssueComment`. */
  addReaction(repo: string, commentId: number, content: "eyes" | "+1" | "confused"): Promise<void>;
}

/** A review we posted. */
export interface PostedReview {
  id: number;
  /** GraphQL node id (what `minimizeComment` takes). */
  nodeId: string;
  url: string;
  body: string;
  /** The commit the review is on. */
  commitId: string;
}

/** The inline review to create. */
export interface NewReview {
  commitId: string;
  body: string;
  comments: InlineComment[];
}

/** A check run we created. */
export interface PostedCheckRun {
  id: number;
  url: string;
}

/** Fields of a check run create or update. */
export interface CheckRunInput {
  name?: string;
  externalId?: string;
  detailsUrl?: string;
  status?: "queued" | "in_progress" | "completed";
  conclusion?: "success" | "neutral" | "failure" | "cancelled";
  output?: {
    title: string;
    summary: string;
    annotations?: CheckAnnotation[];
  };
}

/** A commit status. */
export interface CommitStatusInput {
  state: "pending" | "success" | "failure" | "error";
  description: string;
  context: string;
  targetUrl?: string;
}

/** Bound of a best-effort request (check runs, statuses, reactions). */
export const BEST_EFFORT_TIMEOUT_MS = 10_000;

/** Pages of reviews read when looking for our own (100 each). */
export const MAX_REVIEW_PAGES = 10;

/** A comment on GitHub: its id and `html_url`. */
export interface PostedComment {
  id: number;
  url: string;
}

/** Items per page of the lists read (GitHub's largest). */
const PAGE_SIZE = 100;

/** Pages of comments read when looking for our own comment (100 each). */
export const MAX_COMMENT_PAGES = 30;

/**
 * Default bound of one GitHub request, headers and body.
 *
 * @example
 * ```ts
 * createGitHubClient({ baseUrl, timeoutMs: DEFAULT_GITHUB_TIMEOUT_MS / 2 });
 * ```
 */
export const DEFAULT_GITHUB_TIMEOUT_MS = 30_000;

/**
 * Default bound of the diff text accepted from GitHub, cut at a line (callers then cut it further
 * with {@link truncateDiff}).
 *
 * @example
 * ```ts
 * createGitHubClient({ baseUrl, maxDiffBytes: DEFAULT_MAX_DIFF_BYTES * 2 });
 * ```
 */
export const DEFAULT_MAX_DIFF_BYTES = 16 * 1024 * 1024;

function splitRepo(repo: string): { owner: string; repo: string } {
  const i = repo.indexOf("/");
  if (i <= 0 || i === repo.length - 1) {
    throw new ReviewError(`GitHub repository ${JSON.stringify(repo)} is not "owner/name"`, {
      retryable: false,
      reason: "github_error",
    });
  }
  return { owner: repo.slice(0, i), repo: repo.slice(i + 1) };
}

async function readBounded(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  wholeLines = true,
): Promise<string> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let over = false;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (size + value.byteLength > maxBytes) {
        chunks.push(value.subarray(0, maxBytes - size));
        size = maxBytes;
        over = true;
        break;
      }
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    if (over) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  let bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  if (over && wholeLines) bytes = bytes.subarray(0, bytes.lastIndexOf(0x0a) + 1);
  return new TextDecoder().decode(bytes);
}

/** Options of {@link createGitHubClients}. */
export interface GitHubClientOptions extends Partial<Omit<OctokitPoolOptions, "credentials">> {
  baseUrl: string;
  /** How to authenticate; default: `token` when given, else none. */
  credentials?: GitHubCredentials;
  /** A personal access token (shorthand for `credentials: { kind: "token", token }`). */
  token?: string;
  /** Bound of the diff text accepted from GitHub (default {@link DEFAULT_MAX_DIFF_BYTES}). */
  maxDiffBytes?: number;
}

/**
 * GitHub clients for every credential scope of one service.
 *
 * @example
 * ```ts
 * const clients = createGitHubClients({ baseUrl, credentials: { kind: "app", app } });
 * await clients.forInstallation(review.installationId).getPullRequest("octo/app", 12);
 * ```
 */
export interface GitHubClients {
  /** The client of an installation (an App finds it by repository when `undefined`). */
  forInstallation(installationId?: number): GitHubClient;
  /** Whether writes are authored by the App's bot account. */
  readonly isApp: boolean;
  /** Drops an installation's cached token and owner mapping (a no-op without an App). */
  forget(installationId: number, ownerLogin?: string): Promise<void>;
}

/**
 * Creates the GitHub client of a single token (or none): shorthand for
 * `createGitHubClients(options).forInstallation()`.
 *
 * @example
 * ```ts
 * const github = createGitHubClient({ baseUrl: "https://api.github.com", token: "ghp_…" });
 * const pr = await github.getPullRequest("octo/app", 12);
 * const files = filesFromDiff(await github.getDiff("octo/app", 12));
 * ```
 */
export function createGitHubClient(options: GitHubClientOptions): GitHubClient {
  return createGitHubClients(options).forInstallation();
}

/**
 * Creates the GitHub clients. Each request is bounded by `timeoutMs` (default 30 s) and the diff by
 * `maxDiffBytes` (default 16 MiB, cut at a line); `fetch` replaces the global one.
 *
 * @example
 * ```ts
 * const clients = createGitHubClients({ baseUrl: "https://api.github.com", token: "ghp_…" });
 * const github = clients.forInstallation();
 * ```
 */
export function createGitHubClients(options: GitHubClientOptions): GitHubClients {
  const credentials: GitHubCredentials = options.credentials ??
    (options.token ? { kind: "token", token: options.token } : { kind: "none" });
  const pool = createOctokitPool({
    ...options,
    credentials,
    timeoutMs: options.timeoutMs ?? DEFAULT_GITHUB_TIMEOUT_MS,
  });
  const maxDiffBytes = options.maxDiffBytes ?? DEFAULT_MAX_DIFF_BYTES;
  const clients = new Map<string, GitHubClient>();
  return {
    isApp: pool.isApp,
    async forget(installationId, ownerLogin) {
      if (credentials.kind === "app") await credentials.app.forget(installationId, ownerLogin);
    },
    forInstallation(installationId) {
      const id = String(installationId ?? "");
      let client = clients.get(id);
      if (!client) {
        if (clients.size >= 500) clients.delete(clients.keys().next().value!);
        client = scopedClient(pool, installationId, maxDiffBytes);
        clients.set(id, client);
      }
      return client;
    },
  };
}

/** Answers with these statuses mean "we may not do this here", not "try again". */
function refused(error: unknown): boolean {
  const status = answeredStatus(error);
  return status === 403 && !githubError(error, "").retryable;
}

function scopedClient(
  pool: ReturnType<typeof createOctokitPool>,
  installationId: number | undefined,
  maxDiffBytes: number,
): GitHubClient {
  const call = <T>(what: string, repo: string, run: Parameters<typeof pool.call<T>>[3]) =>
    pool.call(what, repo, installationId, run);
  /** Best-effort calls (check runs, statuses, reactions) get less time: nothing waits on them. */
  const brief = <T>(what: string, repo: string, run: Parameters<typeof pool.call<T>>[3]) =>
    pool.call(what, repo, installationId, run, { timeoutMs: BEST_EFFORT_TIMEOUT_MS });
  // Creates may have happened when no answer came: never retried here.
  const once = { retries: 0 };

  let login: Promise<string | null> | undefined;
  /**
   * Who "we" are: the App's bot (`<slug>[bot]`, from `GET /app`), else the token's login (asked
   * once); `null` when GitHub refuses to say, and then any bot account counts as us.
   */
  const whoAmI = (repo: string) =>
    login ??= (pool.isApp ? pool.appLogin() : call(
      "users.getAuthenticated",
      repo,
      async ({ octokit, signal }) =>
        (await octokit.users.getAuthenticated({ request: { signal } })).data.login,
    )).catch((error: ReviewError) => {
      if (error.retryable) {
        login = undefined; // ask again next time
        throw error;
      }
      return null;
    });
  /** Whether a comment or review is ours and starts with `marker`: anyone can write a marker. */
  const markedByUs = async (repo: string, marker: string) => {
    const me = await whoAmI(repo);
    return (item: { body?: string | null; user?: { login?: string; type?: string } | null }) =>
      typeof item.body === "string" && item.body.startsWith(marker) &&
      (me ? item.user?.login === me : item.user?.type === "Bot");
  };
  /** A list read page by page (up to `maxPages` of {@link PAGE_SIZE}); a short page is the last. */
  async function* pages<T>(
    what: string,
    repo: string,
    maxPages: number,
    list: (scope: RequestScope & { page: number }) => Promise<T[]>,
  ): AsyncGenerator<T[]> {
    for (let page = 1; page <= maxPages; page++) {
      const items = await call(`${what} (page ${page})`, repo, (scope) => list({ ...scope, page }));
      yield items;
      if (items.length < PAGE_SIZE) return;
    }
  }

  return {
    getPullRequest(repo, pullNumber) {
      const what = `pulls.get ${repo}#${pullNumber}`;
      return call(what, repo, async ({ octokit, signal }) => {
        const { data } = await octokit.pulls.get({
          ...splitRepo(repo),
          pull_number: pullNumber,
          request: { signal },
        });
        const pr = data as Partial<typeof data> | undefined;
        if (
          typeof pr?.head?.sha !== "string" || typeof pr.base?.sha !== "string" ||
          typeof pr.title !== "string"
        ) throw malformed(what);
        return {
          headSha: pr.head.sha,
          baseSha: pr.base.sha,
          title: pr.title,
          state: pr.state === "closed" ? "closed" : "open",
          draft: pr.draft === true,
          ...(typeof pr.body === "string" ? { body: pr.body.slice(0, MAX_PR_BODY_CHARS) } : {}),
          ...(typeof pr.head.ref === "string" ? { headRef: pr.head.ref.slice(0, 255) } : {}),
        };
      });
    },
    getDiff(repo, pullNumber) {
      const what = `pulls.get (diff) ${repo}#${pullNumber}`;
      return call(what, repo, async ({ octokit, signal }) => {
        const { data } = await octokit.pulls.get({
          ...splitRepo(repo),
          pull_number: pullNumber,
          mediaType: { format: "diff" },
          // Read the body here, with a byte bound, rather than letting Octokit buffer all of it.
          request: { signal, parseSuccessResponseBody: false },
        });
        const body = data as unknown;
        if (body === null || body === undefined) return "";
        if (typeof body === "string") return truncateDiff(body, maxDiffBytes).diff;
        if (body instanceof ReadableStream) return await readBounded(body, maxDiffBytes);
        throw malformed(what);
      });
    },
    createComment(repo, pullNumber, body) {
      return call(
        `issues.createComment ${repo}#${pullNumber}`,
        repo,
        async ({ octokit, signal }) => {
          const { data } = await octokit.issues.createComment({
            ...splitRepo(repo),
            issue_number: pullNumber,
            body,
            request: { signal, ...once },
          });
          return { id: data.id, url: data.html_url };
        },
      );
    },
    updateComment(repo, commentId, body) {
      const what = `issues.updateComment ${repo} (comment ${commentId})`;
      return call(what, repo, async ({ octokit, signal }) => {
        try {
          const { data } = await octokit.issues.updateComment({
            ...splitRepo(repo),
            comment_id: commentId,
            body,
            request: { signal },
          });
          return { id: data.id, url: data.html_url };
        } catch (error) {
          // Someone deleted the comment (404), or it is not ours to edit (403 without a rate
          // limit): the caller posts its own.
          if (answeredStatus(error) === 404 || refused(error)) return null;
          throw error;
        }
      });
    },
    async findComment(repo, pullNumber, marker) {
      const isMarked = await markedByUs(repo, marker);
      const what = `issues.listComments ${repo}#${pullNumber}`;
      for await (
        const comments of pages(
          what,
          repo,
          MAX_COMMENT_PAGES,
          ({ octokit, signal, page }) =>
            octokit.issues.listComments({
              ...splitRepo(repo),
              issue_number: pullNumber,
              per_page: PAGE_SIZE,
              page,
              request: { signal },
            }).then((r) => r.data),
        )
      ) {
        const mine = comments.find(isMarked);
        if (mine) return { id: mine.id, url: mine.html_url };
      }
      return null;
    },
    getFile(repo, path, ref, maxBytes) {
      const what = `repos.getContent ${repo}:${path}@${ref.slice(0, 12)}`;
      return call(what, repo, async ({ octokit, signal }) => {
        try {
          const { data } = await octokit.repos.getContent({
            ...splitRepo(repo),
            path,
            ref,
            mediaType: { format: "raw" },
            request: { signal, parseSuccessResponseBody: false },
          });
          const body = data as unknown;
          if (typeof body === "string") {
            if (new TextEncoder().encode(body).byteLength > maxBytes) throw tooLarge(what);
            return body;
          }
          if (!(body instanceof ReadableStream)) throw malformed(what);
          const text = await readBounded(body, maxBytes + 1, false);
          if (new TextEncoder().encode(text).byteLength > maxBytes) throw tooLarge(what);
          return text;
        } catch (error) {
          if (answeredStatus(error) === 404) return null;
          throw error;
        }
      });
    },
    async findReviews(repo, pullNumber, markerPrefix) {
      const isMarked = await markedByUs(repo, markerPrefix);
      const what = `pulls.listReviews ${repo}#${pullNumber}`;
      const found: PostedReview[] = [];
      for await (
        const reviews of pages(
          what,
          repo,
          MAX_REVIEW_PAGES,
          ({ octokit, signal, page }) =>
            octokit.pulls.listReviews({
              ...splitRepo(repo),
              pull_number: pullNumber,
              per_page: PAGE_SIZE,
              page,
              request: { signal },
            }).then((r) => r.data),
        )
      ) {
        for (const r of reviews.filter(isMarked)) {
          found.push({
            id: r.id,
            nodeId: r.node_id,
            url: r.html_url,
            body: r.body,
            commitId: r.commit_id ?? "",
          });
        }
      }
      return found;
    },
    createReview(repo, pullNumber, review) {
      const what = `pulls.createReview ${repo}#${pullNumber}`;
      return call(what, repo, async ({ octokit, signal }) => {
        const { data } = await octokit.pulls.createReview({
          ...splitRepo(repo),
          pull_number: pullNumber,
          commit_id: review.commitId,
          body: review.body,
          event: "COMMENT",
          comments: review.comments,
          request: { signal, ...once },
        });
        if (typeof data?.id !== "number") throw malformed(what);
        return {
          id: data.id,
          nodeId: data.node_id,
          url: data.html_url,
          body: data.body ?? "",
          commitId: data.commit_id ?? review.commitId,
        };
      });
    },
    async minimizeOutdated(nodeId) {
      await call("graphql minimizeComment", "", async ({ octokit, signal }) => {
        await octokit.graphql(
          `mutation($id: ID!) {
            minimizeComment(input: { subjectId: $id, classifier: OUTDATED }) {
              minimizedComment { isMinimized }
            }
          }`,
          { id: nodeId, request: { signal } },
        );
      });
    },
    findCheckRun(repo, headSha, name, externalId) {
      const what = `checks.listForRef ${repo}@${headSha.slice(0, 12)}`;
      return brief(what, repo, async ({ octokit, signal }) => {
        const { data } = await octokit.checks.listForRef({
          ...splitRepo(repo),
          ref: headSha,
          check_name: name,
          filter: "all",
          per_page: 100,
          request: { signal },
        });
        const run = data.check_runs?.find((r) => r.external_id === externalId);
        return run ? { id: run.id, url: run.html_url ?? "" } : null;
      });
    },
    createCheckRun(repo, run) {
      const what = `checks.create ${repo}@${run.headSha.slice(0, 12)}`;
      return brief(what, repo, async ({ octokit, signal }) => {
        const { data } = await octokit.checks.create({
          ...splitRepo(repo),
          head_sha: run.headSha,
          ...checkRunFields(run),
          name: run.name ?? "AI review",
          request: { signal, ...once },
        });
        return { id: data.id, url: data.html_url ?? "" };
      });
    },
    async updateCheckRun(repo, checkRunId, run) {
      await brief(
        `checks.update ${repo} (check run ${checkRunId})`,
        repo,
        async ({ octokit, signal }) => {
          await octokit.checks.update({
            ...splitRepo(repo),
            check_run_id: checkRunId,
            ...checkRunFields(run),
            request: { signal },
          });
        },
      );
    },
    async createStatus(repo, sha, status) {
      await brief(
        `repos.createCommitStatus ${repo}@${sha.slice(0, 12)}`,
        repo,
        async ({ octokit, signal }) => {
          await octokit.repos.createCommitStatus({
            ...splitRepo(repo),
            sha,
            state: status.state,
            description: status.description.slice(0, 140),
            context: status.context,
            ...(status.targetUrl ? { target_url: status.targetUrl } : {}),
            request: { signal },
          });
        },
      );
    },
    async addReaction(repo, commentId, content) {
      await brief(
        `reactions.createForIssueComment ${repo} (comment ${commentId})`,
        repo,
        async ({ octokit, signal }) => {
          await octokit.reactions.createForIssueComment({
            ...splitRepo(repo),
            comment_id: commentId,
            content,
            request: { signal },
          });
        },
      );
    },
  };
}

function tooLarge(what: string): ReviewError {
  return new ReviewError(`GitHub ${what}: the file is larger than this service reads`, {
    retryable: false,
    reason: "github_error",
    cause: { tooLarge: true },
  });
}

/** A check run's fields in the REST API's names. */
function checkRunFields(run: CheckRunInput) {
  return {
    ...(run.name ? { name: run.name } : {}),
    ...(run.externalId ? { external_id: run.externalId } : {}),
    ...(run.detailsUrl ? { details_url: run.detailsUrl } : {}),
    ...(run.status ? { status: run.status } : {}),
    ...(run.conclusion ? { conclusion: run.conclusion } : {}),
    ...(run.status === "in_progress" ? { started_at: new Date().toISOString() } : {}),
    ...(run.status === "completed" ? { completed_at: new Date().toISOString() } : {}),
    ...(run.output ? { output: run.output } : {}),
  };
}
