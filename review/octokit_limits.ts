/**
 * The limits and retries around every request of one Octokit instance (one credential scope):
 * requests in flight bounded, writes spaced, a short rate limit waited for once, and 5xx or
 * unanswered requests retried a bounded number of times.
 *
 * This does what `@octokit/plugin-throttling` and `@octokit/plugin-retry` did for the client, with
 * the same rules, but without Bottleneck: measured under a drain, the Bottleneck jobs (two or three
 * per request, one limiter built per request by plugin-retry) took about a sixth of the service's
 * CPU, and their timer yields added 9 ms to each request, 27 ms with both plugins.
 *
 * @module
 */
import type { Octokit } from "@octokit/core";

/** Options of {@link applyLimits}. */
export interface LimitOptions {
  /** Requests in flight at once; more wait their turn (a retry does not wait again). */
  maxConcurrent: number;
  /** Least time between the starts of two writes (and GraphQL requests); 0 for none. */
  writeIntervalMs: number;
  /** Retries of a 5xx or unanswered request, unless the request says `request.retries`. */
  retries: number;
  /** Retry n waits n² × this. */
  retryBaseMs: number;
  /** Longest rate-limit wait taken inside a request (once); a longer limit fails the request. */
  maxInlineWaitMs: number;
}

/** The endpoint options a request hook gets (the parts read here). */
interface RequestOptions {
  method: string;
  url: string;
  request?: { signal?: AbortSignal | null; retries?: number };
}

/** An Octokit error (a `RequestError` carries `request`; an answered one, `response`). */
interface OctokitError {
  status?: number;
  message?: string;
  request?: unknown;
  response?: { headers?: Record<string, string | undefined>; data?: unknown };
}

/** Answers not worth asking again (plugin-retry's list). */
const DO_NOT_RETRY = new Set([400, 401, 403, 404, 410, 422, 451]);
/** The wait of a secondary limit that names none (plugin-throttling's). */
const FALLBACK_SECONDARY_WAIT_S = 60;

/**
 * Wraps every request of `octokit` in the limits of `options`.
 *
 * @example
 * ```ts
 * const octokit = new Octokit({ baseUrl });
 * applyLimits(octokit, { maxConcurrent: 100, writeIntervalMs: 0, retries: 2, retryBaseMs: 1_000,
 *   maxInlineWaitMs: 10_000 });
 * ```
 */
export function applyLimits(octokit: Pick<Octokit, "hook">, options: LimitOptions): void {
  const inFlight = semaphore(options.maxConcurrent);
  let nextWriteAt = 0;
  /** Waits for this write's start: writes start at least `writeIntervalMs` apart. */
  const writeTurn = (signal?: AbortSignal | null) => {
    const now = Date.now();
    const at = Math.max(now, nextWriteAt);
    nextWriteAt = at + options.writeIntervalMs;
    return sleep(at - now, signal);
  };
  octokit.hook.wrap("request", async (request, endpoint) => {
    const signal = endpoint.request?.signal;
    const spaced = options.writeIntervalMs > 0 && isWrite(endpoint);
    let rateLimitWaited = false;
    for (let retry = 0;; retry++) {
      if (spaced) await writeTurn(signal);
      try {
        const response = retry === 0
          ? await inFlight(() => request(endpoint))
          : await request(endpoint);
        const failed = graphqlFailure(endpoint, response);
        if (failed) throw failed;
        return response;
      } catch (error) {
        const limitWait = rateLimitWaitMs(error as OctokitError);
        // A rate limit longer than an inline wait fails the request at once (the pipeline comes
        // back after GitHub's wait): asking again early only prolongs it.
        if (limitWait !== undefined && !(limitWait <= options.maxInlineWaitMs)) throw error;
        if (limitWait !== undefined && !rateLimitWaited) {
          rateLimitWaited = true;
          await sleep(limitWait, signal);
          continue;
        }
        const retries = endpoint.request?.retries ?? options.retries;
        if (!retriable(error as OctokitError) || retry >= retries) throw error;
        // A repeated limit is retried like a failure, but never before the wait GitHub named.
        await sleep(Math.max(limitWait ?? 0, (retry + 1) ** 2 * options.retryBaseMs), signal);
      }
    }
  });
}

/** Writes (and GraphQL, which may mutate) are spaced; reads are not. */
function isWrite(endpoint: RequestOptions): boolean {
  return (endpoint.method !== "GET" && endpoint.method !== "HEAD") ||
    endpoint.url.startsWith("/graphql");
}

/**
 * A GraphQL answer (HTTP 200) that failed the way a REST answer would: rate limited (waited for
 * like a REST limit) or GitHub's transient "Something went wrong" (retried like a 5xx).
 */
function graphqlFailure(endpoint: RequestOptions, response: unknown): Error | undefined {
  if (!endpoint.url.startsWith("/graphql")) return undefined;
  const data = (response as { data?: { errors?: Array<{ type?: string; message?: string }> } })
    .data;
  const errors = data?.errors ?? [];
  if (errors.some((e) => e.type === "RATE_LIMITED")) {
    return Object.assign(new Error("GraphQL Rate Limit Exceeded"), { response, data });
  }
  const message = errors[0]?.message ?? "";
  if (/Something went wrong while executing your query/.test(message)) {
    return Object.assign(new Error(message), { status: 500, request: endpoint, response });
  }
  return undefined;
}

/**
 * How long a rate-limit answer asks us to wait, in ms, or `undefined` when `error` is none: a
 * secondary limit (its `retry-after`, else a minute), or a primary one (`x-ratelimit-remaining: 0`,
 * until a second after `x-ratelimit-reset`).
 */
function rateLimitWaitMs(error: OctokitError): number | undefined {
  const headers = error.response?.headers ?? {};
  const graphqlLimited = (error.response?.data as { errors?: Array<{ type?: string }> } | undefined)
    ?.errors?.some((e) => e.type === "RATE_LIMITED");
  if (error.status !== 403 && error.status !== 429 && !graphqlLimited) return undefined;
  if (/\bsecondary rate\b/i.test(error.message ?? "")) {
    return (Number(headers["retry-after"]) || FALLBACK_SECONDARY_WAIT_S) * 1_000;
  }
  // A 429 naming its wait is a limit, whatever its message says. (A 403 with `retry-after` but
  // no "secondary rate" message fails the step, retryable after that wait, as it always did.)
  const retryAfter = headers["retry-after"];
  if (
    error.status === 429 && retryAfter !== undefined && retryAfter.trim() !== "" &&
    !Number.isNaN(Number(retryAfter))
  ) {
    return Math.max(0, Number(retryAfter)) * 1_000;
  }
  if (headers["x-ratelimit-remaining"] === "0" || graphqlLimited) {
    const reset = ~~Number(headers["x-ratelimit-reset"]) * 1_000;
    return Math.max(Math.ceil((reset - Date.now()) / 1_000) + 1, 0) * 1_000;
  }
  return undefined;
}

/**
 * Whether another try may help: an Octokit request error (answered, or failed without an answer,
 * which Octokit calls 500) that is not a refusal. A timeout passes through as an `AbortError`.
 */
function retriable(error: OctokitError): boolean {
  if (error?.request === undefined || typeof error.status !== "number") return false;
  return error.status >= 400 && !DO_NOT_RETRY.has(error.status);
}

/** Runs at most `max` functions at once; the others wait in order. */
function semaphore(max: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(run: () => T | Promise<T>): Promise<T> => {
    if (active < max) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await run();
    } finally {
      // The slot passes straight to the next in line.
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/** Waits `ms`, or less when `signal` aborts (the request then fails on its own). */
function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
