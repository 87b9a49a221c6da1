/**
 * The Octokit instances behind the GitHub client: one per credential scope (the personal token, or
 * one GitHub App installation), each with the limits of `review/octokit_limits.ts` (requests in
 * flight bounded, writes spaced per installation, a short primary or secondary rate limit waited
 * for once, 5xx and failures without an answer retried a bounded number of times), and a
 * per-request timeout.
 *
 * @module
 */
import { Octokit as Core } from "@octokit/core";
import { legacyRestEndpointMethods } from "@octokit/plugin-rest-endpoint-methods";
import { ReviewError } from "./errors.ts";
import { answeredStatus, githubError } from "./github_errors.ts";
import { applyLimits } from "./octokit_limits.ts";

/**
 * `@octokit/rest`'s Octokit without its request-log plugin, which parsed every request's endpoint
 * again (4% of the service's busy CPU under a drain) for log lines this service drops, and
 * without pagination (the client pages itself).
 */
const Octokit = Core.plugin(legacyRestEndpointMethods);
/** An Octokit instance of one credential scope. */
export type ScopedOctokit = InstanceType<typeof Octokit>;

/**
 * What the client needs of a GitHub App (`review/github_app.ts` implements it): installation
 * tokens, cached and renewed, and the installation of a repository.
 *
 * @example
 * ```ts
 * const app: AppTokens = createGitHubAppAuth({ kv, appId, privateKey, baseUrl });
 * ```
 */
export interface AppTokens {
  installationToken(installationId: number): Promise<string>;
  installationFor(repo: string): Promise<number>;
  forget(installationId: number, ownerLogin?: string): Promise<void>;
  botLogin(): Promise<string>;
}

/**
 * How the service authenticates to GitHub: a fixed token (a personal access token), a GitHub App
 * (an installation token per installation), or nothing (public data only).
 *
 * @example
 * ```ts
 * const credentials: GitHubCredentials = { kind: "token", token: "ghp_…" };
 * ```
 */
export type GitHubCredentials =
  | { kind: "token"; token: string }
  | { kind: "app"; app: AppTokens }
  | { kind: "none" };

/** Options of {@link createOctokitPool}. */
export interface OctokitPoolOptions {
  baseUrl: string;
  credentials: GitHubCredentials;
  fetch?: typeof fetch;
  userAgent?: string;
  /** Bound of one request (each retry gets its own). */
  timeoutMs: number;
  /** Retries of a 5xx or unanswered request (creates never retry: they may have happened). */
  retries?: number;
  /** Base of the retry delay: retry n waits n² × this (plugin-retry's rule). */
  retryBaseMs?: number;
  /** Least time between two writes of one installation (GitHub asks for about a second). */
  writeIntervalMs?: number;
  /** Longest `retry-after` waited for inside a request; longer ones fail, retryable, with it. */
  maxInlineWaitMs?: number;
}

/** One request's context: the Octokit of its scope and the signal bounding it. */
export interface RequestScope {
  octokit: ScopedOctokit;
  signal: AbortSignal;
}

/**
 * A pool of Octokit instances, one per credential scope.
 *
 * @example
 * ```ts
 * const pool = createOctokitPool({ baseUrl, credentials, timeoutMs: 30_000 });
 * const pr = await pool.call("pulls.get", "octo/app", undefined, ({ octokit, signal }) =>
 *   octokit.pulls.get({ owner: "octo", repo: "app", pull_number: 1, request: { signal } }));
 * ```
 */
export interface OctokitPool {
  /**
   * Runs `run` with the Octokit of `repo`'s scope (the given installation, else the one the App
   * finds for the repository) under the request timeout; failures become {@link ReviewError}s.
   */
  call<T>(
    what: string,
    repo: string,
    installationId: number | undefined,
    run: (scope: RequestScope) => Promise<T>,
    options?: { timeoutMs?: number },
  ): Promise<T>;
  /** Whether the credentials are an App's (whose writes are authored by a bot account). */
  readonly isApp: boolean;
  /** The App's bot login (`<slug>[bot]`), or `null` without an App. */
  appLogin(): Promise<string | null>;
}

/** Installations whose Octokit is kept; the oldest is dropped beyond this. */
const MAX_SCOPES = 500;

/**
 * Creates the pool. Each scope's limits are its own Octokit's, so two services in one process, as
 * tests run them, do not slow each other down.
 *
 * @example
 * ```ts
 * const pool = createOctokitPool({ baseUrl: "https://api.github.com",
 *   credentials: { kind: "token", token }, timeoutMs: 30_000 });
 * ```
 */
export function createOctokitPool(options: OctokitPoolOptions): OctokitPool {
  const { credentials } = options;
  const maxInlineWaitMs = options.maxInlineWaitMs ?? 10_000;
  const limits = {
    // Requests in flight per installation: enough that slow best-effort calls (check runs) never
    // hold up the reviews' own calls.
    maxConcurrent: 100,
    writeIntervalMs: options.writeIntervalMs ?? 0,
    retries: options.retries ?? 2,
    retryBaseMs: options.retryBaseMs ?? 1_000,
    // Wait for a short limit inside the request, once; a longer one fails the step, retryable
    // with GitHub's wait, and the pipeline comes back after it.
    maxInlineWaitMs,
  };
  const secrets = new Set<string>();
  if (credentials.kind === "token") secrets.add(credentials.token);
  const scopes = new Map<string, ScopedOctokit>();
  const baseFetch = options.fetch ?? fetch;
  // A request whose time ran out is not retried: only Octokit's RequestErrors are, and an
  // AbortError passes through as itself.
  const boundedFetch: typeof fetch = async (input, init) => {
    try {
      if (init?.signal?.aborted) throw init.signal.reason;
      return await baseFetch(input, init);
    } catch (error) {
      if (init?.signal?.aborted) throw new DOMException("the request timed out", "AbortError");
      throw error;
    }
  };

  function tokenFor(installationId: number | undefined): () => Promise<string | undefined> {
    if (credentials.kind === "token") return () => Promise.resolve(credentials.token);
    if (credentials.kind === "none" || installationId === undefined) {
      return () => Promise.resolve(undefined);
    }
    return async () => {
      const token = await credentials.app.installationToken(installationId);
      if (secrets.size > 1_000) secrets.clear();
      secrets.add(token);
      return token;
    };
  }

  function octokitOf(installationId: number | undefined): ScopedOctokit {
    const id = installationId === undefined ? "token" : `installation-${installationId}`;
    const known = scopes.get(id);
    if (known) return known;
    const token = tokenFor(installationId);
    // An auth strategy whose hook asks for the token on every request: a renewed installation
    // token is used as soon as KV has it.
    const authStrategy = () =>
      Object.assign(() => Promise.resolve({ type: "token" }), {
        hook: async (
          request: {
            endpoint: { merge: (...a: unknown[]) => { headers: Record<string, string> } };
          },
          route: unknown,
          parameters?: unknown,
        ) => {
          // Octokit hands the hook the request's own merged options: a copy with the header is
          // enough (`request` merges them once more itself).
          const endpoint = typeof route === "string"
            ? request.endpoint.merge(route, parameters)
            : { ...route as { headers: Record<string, string> } };
          const value = await token();
          if (value) endpoint.headers = { ...endpoint.headers, authorization: `token ${value}` };
          return (request as unknown as (e: unknown) => Promise<unknown>)(endpoint);
        },
      });
    const octokit = new Octokit({
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
      authStrategy,
      userAgent: options.userAgent ?? "ai-code-review-orchestrator",
      request: { fetch: boundedFetch },
      // Errors are returned as ReviewErrors and logged by the pipeline.
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    // Inside the limits, which read GraphQL answers' errors.
    parseJsonNatively(octokit);
    applyLimits(octokit, limits);
    if (scopes.size >= MAX_SCOPES) scopes.delete(scopes.keys().next().value!);
    scopes.set(id, octokit);
    return octokit;
  }

  return {
    isApp: credentials.kind === "app",
    appLogin: () => credentials.kind === "app" ? credentials.app.botLogin() : Promise.resolve(null),
    async call(what, repo, installationId, run, callOptions) {
      let installation = installationId;
      if (credentials.kind === "app" && installation === undefined) {
        installation = await credentials.app.installationFor(repo);
      }
      const timeoutMs = callOptions?.timeoutMs ?? options.timeoutMs;
      // A timer cleared when the call ends: `AbortSignal.timeout` would fire for every call long
      // after it ended (building an error each time) and keep its request reachable until then.
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), timeoutMs);
      const signal = timeout.signal;
      try {
        return await run({ octokit: octokitOf(installation), signal });
      } catch (error) {
        if (signal.aborted && !(error instanceof ReviewError)) {
          throw new ReviewError(`GitHub ${what} timed out after ${timeoutMs} ms`, {
            retryable: true,
            reason: "github_error",
            ambiguous: true,
          });
        }
        if (
          credentials.kind === "app" && installation !== undefined &&
          answeredStatus(error) === 401
        ) {
          // The installation token was revoked (uninstalled, suspended): drop it and let the
          // next attempt ask for a new one, or learn the installation is gone.
          await credentials.app.forget(installation).catch(() => {});
          throw new ReviewError(`GitHub ${what} refused the installation token (401)`, {
            retryable: true,
            reason: "github_error",
          });
        }
        throw githubError(error, what, [...secrets]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Successful JSON answers parsed with `JSON.parse` instead of Octokit's parser (json-with-bigint:
 * a reviver called on every value, 8× slower; a 15 KB pull request took 140 µs to parse, half the
 * client's CPU for that call). It only matters for integers beyond 2^53, which GitHub's ids are
 * not. Requests that read their own body (`parseSuccessResponseBody: false`: diffs, files) are
 * left alone; failed answers are still parsed by Octokit, for its error messages.
 *
 * @example
 * ```ts
 * const octokit = new Octokit({ baseUrl });
 * parseJsonNatively(octokit);
 * ```
 */
export function parseJsonNatively(octokit: Pick<ScopedOctokit, "hook">): void {
  const takenOver = new WeakSet<object>();
  octokit.hook.wrap("request", async (request, endpoint) => {
    const options = endpoint.request;
    const own = options.parseSuccessResponseBody === false && !takenOver.has(endpoint);
    if (own) return await request(endpoint);
    // Changed in place: every hook gets the request's one options object, whatever an outer hook
    // passes on (a retry comes back here with it, already taken over).
    options.parseSuccessResponseBody = false;
    takenOver.add(endpoint);
    const response = await request(endpoint);
    const body = response.data as unknown;
    if (body instanceof ReadableStream) response.data = await readBody(body, response.headers);
    return response;
  });
}

/** An answer's body as Octokit would give it: JSON parsed, text as text, anything else as bytes. */
async function readBody(
  body: ReadableStream<Uint8Array>,
  headers: Record<string, string | number | undefined>,
): Promise<unknown> {
  const answer = new Response(body);
  const type = String(headers["content-type"] ?? "").toLowerCase();
  const mime = type.split(";")[0].trim();
  if (mime === "application/json" || mime === "application/scim+json") {
    const text = await answer.text();
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  const isText = !type || mime.startsWith("text/") ||
    (/charset=("?)utf-8\1/.test(type) && mime !== "application/octet-stream");
  return isText ? await answer.text() : await answer.arrayBuffer();
}
