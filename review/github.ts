/**
 * Every GitHub call, through `@octokit/rest`, with errors mapped to retryable or final
 * {@link ReviewError}s. The token is never part of an error message.
 *
 * @module
 */
import { Octokit } from "@octokit/rest";
import { ReviewError } from "./errors.ts";

/** What the pipeline needs of a pull request. */
export interface PullRequestInfo {
  headSha: string;
  baseSha: string;
  title: string;
  state: "open" | "closed";
  draft: boolean;
}

/** The GitHub operations of the pipeline. */
export interface GitHubClient {
  getPullRequest(repo: string, pullNumber: number): Promise<PullRequestInfo>;
  getDiff(repo: string, pullNumber: number): Promise<string>;
  upsertComment(
    repo: string,
    pullNumber: number,
    body: string,
    existingCommentId?: number,
  ): Promise<{ id: number; url: string }>;
}

function splitRepo(repo: string): { owner: string; repo: string } {
  const i = repo.indexOf("/");
  return { owner: repo.slice(0, i), repo: repo.slice(i + 1) };
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown })?.status;
  return typeof status === "number" ? status : undefined;
}

/**
 * Maps an Octokit failure to a {@link ReviewError}: 5xx, 429, rate-limited 403, network errors and
 * timeouts are retryable; other 4xx are final.
 *
 * @example
 * ```ts
 * throw githubError(error, "pulls.get octo/app#1");
 * ```
 */
export function githubError(error: unknown, what: string): ReviewError {
  const status = statusOf(error);
  const headers = (error as { response?: { headers?: Record<string, string> } })?.response
    ?.headers;
  const rateLimited = status === 403 && headers?.["x-ratelimit-remaining"] === "0";
  const retryable = status === undefined || status >= 500 || status === 429 || rateLimited;
  const detail = status === undefined
    ? `failed: ${error instanceof Error ? error.name : "error"}`
    : `answered ${status}: ${
      String(
        (error as { response?: { data?: { message?: unknown } } })?.response?.data?.message ??
          (error as Error).message ?? "",
      ).slice(0, 200)
    }`;
  return new ReviewError(`GitHub ${what} ${detail}`, {
    retryable,
    reason: "github_error",
    cause: status,
  });
}

/**
 * Creates the GitHub client.
 *
 * @example
 * ```ts
 * const github = createGitHubClient({ baseUrl: "https://api.github.com", token: "ghs_…" });
 * const pr = await github.getPullRequest("octo/app", 12);
 * ```
 */
export function createGitHubClient(options: {
  baseUrl: string;
  token?: string;
  fetch?: typeof fetch;
  userAgent?: string;
  timeoutMs?: number;
}): GitHubClient {
  const octokit = new Octokit({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    auth: options.token,
    userAgent: options.userAgent ?? "ai-code-review-orchestrator",
    request: options.fetch ? { fetch: options.fetch } : {},
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function call<T>(what: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await run(AbortSignal.timeout(timeoutMs));
    } catch (error) {
      throw githubError(error, what);
    }
  }

  return {
    getPullRequest(repo, pullNumber) {
      return call(`pulls.get ${repo}#${pullNumber}`, async (signal) => {
        const { data } = await octokit.pulls.get({
          ...splitRepo(repo),
          pull_number: pullNumber,
          request: { signal },
        });
        return {
          headSha: data.head.sha,
          baseSha: data.base.sha,
          title: data.title,
          state: data.state === "closed" ? "closed" : "open",
          draft: data.draft ?? false,
        };
      });
    },
    getDiff(repo, pullNumber) {
      return call(`pulls.get (diff) ${repo}#${pullNumber}`, async (signal) => {
        const { data } = await octokit.pulls.get({
          ...splitRepo(repo),
          pull_number: pullNumber,
          mediaType: { format: "diff" },
          request: { signal },
        });
        return String(data);
      });
    },
    upsertComment(repo, pullNumber, body, existingCommentId) {
      const where = splitRepo(repo);
      const create = () =>
        call(`issues.createComment ${repo}#${pullNumber}`, async (signal) => {
          const { data } = await octokit.issues.createComment({
            ...where,
            issue_number: pullNumber,
            body,
            request: { signal },
          });
          return { id: data.id, url: data.html_url };
        });
      if (existingCommentId === undefined) return create();
      return call(`issues.updateComment ${repo}#${pullNumber}`, async (signal) => {
        try {
          const { data } = await octokit.issues.updateComment({
            ...where,
            comment_id: existingCommentId,
            body,
            request: { signal },
          });
          return { id: data.id, url: data.html_url };
        } catch (error) {
          // Someone deleted the comment: post a new one rather than fail the review.
          if (statusOf(error) === 404) return await create();
          throw error;
        }
      });
    },
  };
}

/**
 * The paths a unified diff touches (the `b/` side), in order, without repeats.
 *
 * @example
 * ```ts
 * filesFromDiff("diff --git a/x.ts b/x.ts\n"); // ["x.ts"]
 * ```
 */
export function filesFromDiff(diff: string): string[] {
  const files = new Set<string>();
  for (const match of diff.matchAll(/^diff --git a\/.+? b\/(.+)$/gm)) files.add(match[1]);
  return [...files];
}

/**
 * Cuts a diff to at most `maxBytes` (UTF-8) at a line boundary.
 *
 * @example
 * ```ts
 * truncateDiff("a\nb\n", 2); // { diff: "a\n", truncated: true }
 * ```
 */
export function truncateDiff(diff: string, maxBytes: number): { diff: string; truncated: boolean } {
  const bytes = new TextEncoder().encode(diff);
  if (bytes.length <= maxBytes) return { diff, truncated: false };
  const cut = new TextDecoder().decode(bytes.slice(0, maxBytes)).replace(/\uFFFD$/, "");
  const lastNewline = cut.lastIndexOf("\n");
  return { diff: lastNewline >= 0 ? cut.slice(0, lastNewline + 1) : "", truncated: true };
}
