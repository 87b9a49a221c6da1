/**
 * Every GitHub call, through `@octokit/rest`, with errors mapped to retryable or final
 * {@link ReviewError}s. The token is never part of an error message.
 *
 * `@octokit/rest` bundles only the request-log, REST-endpoint-methods and paginate plugins: it has
 * no retry or throttling plugin, so every method here makes exactly one HTTP request per call (per
 * page in {@link GitHubClient.findComment}), bounded by its own timeout. Retrying is the review
 * pipeline's business.
 *
 * @module
 */
import { Octokit } from "@octokit/rest";
import { truncateDiff } from "./diff.ts";
import { retryAfterMs, ReviewError } from "./errors.ts";

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
 * The GitHub operations of the pipeline. Every failure is a {@link ReviewError} with reason
 * `github_error`.
 *
 * @example
 * ```ts
 * const github: GitHubClient = createGitHubClient({ baseUrl: "https://api.github.com" });
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
}

/** A comment on GitHub: its id and `html_url`. */
export interface PostedComment {
  id: number;
  url: string;
}

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

interface ErrorLike {
  status?: unknown;
  message?: unknown;
  response?: { status?: unknown; headers?: Record<string, unknown>; data?: unknown };
}

function statusOf(error: unknown): number | undefined {
  const status = (error as ErrorLike | undefined)?.status;
  return typeof status === "number" ? status : undefined;
}

/** An HTTP answer from GitHub, as opposed to a request that never got one (Octokit calls those 500). */
function answeredStatus(error: unknown): number | undefined {
  const response = (error as ErrorLike | undefined)?.response;
  if (!response || typeof response !== "object") return undefined;
  return typeof response.status === "number" ? response.status : statusOf(error);
}

function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join("[REDACTED]");
  }
  return out;
}

function oneLine(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * Maps an Octokit failure to a {@link ReviewError} (reason `github_error`): 5xx, 429, a rate-limited
 * 403 (`x-ratelimit-remaining: 0` or `retry-after`) and failures without an answer (network errors,
 * timeouts) are retryable; 401, 404, 422 and every other 4xx are final. `secrets` are cut out of the
 * message. A {@link ReviewError} passes through unchanged.
 *
 * @example
 * ```ts
 * try {
 *   await octokit.pulls.get({ owner: "octo", repo: "app", pull_number: 12 });
 * } catch (error) {
 *   throw githubError(error, "pulls.get octo/app#12", [token]);
 *   // e.g. "GitHub pulls.get octo/app#12 answered 404: Not Found" (final)
 * }
 * ```
 */
export function githubError(
  error: unknown,
  what: string,
  secrets: readonly (string | undefined)[] = [],
  now = Date.now(),
): ReviewError {
  if (error instanceof ReviewError) return error;
  const status = answeredStatus(error);
  if (status === undefined) {
    // No answer: Octokit reports a failed fetch as an HttpError "500" without a response.
    const message = (error as ErrorLike | undefined)?.message;
    const detail = typeof message === "string" && message ? oneLine(message) : String(error);
    return new ReviewError(redact(`GitHub ${what} failed without an answer: ${detail}`, secrets), {
      retryable: true,
      reason: "github_error",
      ambiguous: true,
    });
  }
  const response = (error as ErrorLike).response!;
  const header = (name: string) => {
    const value = response.headers?.[name];
    return value === undefined || value === null ? undefined : String(value);
  };
  const message = typeof response.data === "object" && response.data !== null &&
      typeof (response.data as { message?: unknown }).message === "string"
    ? (response.data as { message: string }).message
    : typeof response.data === "string" && response.data.trim()
    ? response.data
    : "no message";
  // Primary limits say `x-ratelimit-remaining: 0`; secondary ones say so in the message and
  // usually send `retry-after`.
  const rateLimited = (status === 403 || status === 429) &&
    (header("x-ratelimit-remaining") === "0" || header("retry-after") !== undefined ||
      /rate limit/i.test(message));
  const retryable = status >= 500 || status === 429 || rateLimited;
  return new ReviewError(
    redact(`GitHub ${what} answered ${status}: ${oneLine(message)}`, secrets),
    {
      retryable,
      reason: "github_error",
      cause: { status, rateLimited },
      retryAfterMs: rateLimited ? waitFromHeaders(header, now) : undefined,
      ambiguous: status >= 500,
    },
  );
}

/** How long GitHub asks us to wait: `retry-after`, else until `x-ratelimit-reset`. */
function waitFromHeaders(header: (name: string) => string | undefined, now: number) {
  const after = retryAfterMs(header("retry-after"), now);
  if (after !== undefined) return after;
  const reset = Number(header("x-ratelimit-reset"));
  return Number.isFinite(reset) && reset > 0 ? Math.max(0, reset * 1000 - now) : undefined;
}

async function readBounded(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
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
  if (over) bytes = bytes.subarray(0, bytes.lastIndexOf(0x0a) + 1); // whole lines only
  return new TextDecoder().decode(bytes);
}

function malformed(what: string): ReviewError {
  return new ReviewError(`GitHub ${what} answered with an unexpected body`, {
    retryable: true,
    reason: "github_error",
  });
}

/**
 * Creates the GitHub client. Each request is bounded by `timeoutMs` (default 30 s) and the diff
 * accepted by `maxDiffBytes` (default 16 MiB, cut at a line); `fetch` replaces the global one.
 *
 * @example
 * ```ts
 * const github = createGitHubClient({ baseUrl: "https://api.github.com", token: "ghs_…" });
 * const pr = await github.getPullRequest("octo/app", 12);
 * const files = filesFromDiff(await github.getDiff("octo/app", 12));
 * ```
 */
export function createGitHubClient(options: {
  baseUrl: string;
  token?: string;
  fetch?: typeof fetch;
  userAgent?: string;
  timeoutMs?: number;
  maxDiffBytes?: number;
}): GitHubClient {
  const octokit = new Octokit({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    auth: options.token,
    userAgent: options.userAgent ?? "ai-code-review-orchestrator",
    request: { fetch: options.fetch },
    // Errors are returned as ReviewErrors and logged by the pipeline.
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const timeoutMs = options.timeoutMs ?? DEFAULT_GITHUB_TIMEOUT_MS;
  const maxDiffBytes = options.maxDiffBytes ?? DEFAULT_MAX_DIFF_BYTES;
  const secrets = [options.token];

  async function call<T>(what: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      return await run(signal);
    } catch (error) {
      if (signal.aborted && !(error instanceof ReviewError)) {
        throw new ReviewError(`GitHub ${what} timed out after ${timeoutMs} ms`, {
          retryable: true,
          reason: "github_error",
          ambiguous: true,
        });
      }
      throw githubError(error, what, secrets);
    }
  }

  let login: Promise<string | null> | undefined;
  /** The token's login, asked once; `null` when GitHub refuses (an installation token). */
  const whoAmI = () =>
    login ??= call(
      "users.getAuthenticated",
      async (signal) => (await octokit.users.getAuthenticated({ request: { signal } })).data.login,
    ).catch((error: ReviewError) => {
      if (error.retryable) {
        login = undefined; // ask again next time
        throw error;
      }
      return null;
    });
  const client: GitHubClient = {
    getPullRequest(repo, pullNumber) {
      const what = `pulls.get ${repo}#${pullNumber}`;
      return call(what, async (signal) => {
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
      return call(what, async (signal) => {
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
      return call(`issues.createComment ${repo}#${pullNumber}`, async (signal) => {
        const { data } = await octokit.issues.createComment({
          ...splitRepo(repo),
          issue_number: pullNumber,
          body,
          request: { signal },
        });
        return { id: data.id, url: data.html_url };
      });
    },
    updateComment(repo, commentId, body) {
      return call(`issues.updateComment ${repo} (comment ${commentId})`, async (signal) => {
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
          const status = answeredStatus(error);
          if (status === 404) return null;
          if (status === 403 && !githubError(error, "").retryable) return null;
          throw error;
        }
      });
    },
    async findComment(repo, pullNumber, marker) {
      const me = await whoAmI();
      const ours = (user: { login?: string; type?: string } | null | undefined) =>
        me ? user?.login === me : user?.type === "Bot";
      for (let page = 1; page <= MAX_COMMENT_PAGES; page++) {
        const comments = await call(
          `issues.listComments ${repo}#${pullNumber} (page ${page})`,
          async (signal) =>
            (await octokit.issues.listComments({
              ...splitRepo(repo),
              issue_number: pullNumber,
              per_page: 100,
              page,
              request: { signal },
            })).data,
        );
        // Anyone can write our marker into a comment; only our own comment is adopted.
        const mine = comments.find((c) =>
          typeof c.body === "string" && c.body.startsWith(marker) && ours(c.user)
        );
        if (mine) return { id: mine.id, url: mine.html_url };
        if (comments.length < 100) return null;
      }
      return null;
    },
  };
  return client;
}
