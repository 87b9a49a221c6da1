/**
 * The HTTP client of the `reviews` CLI: one bounded `fetch` per call against the internal API,
 * and the mapping of what went wrong to one message and one exit code.
 *
 * @module
 */

/**
 * Exit codes of `deno task reviews`, for scripts.
 *
 * @example
 * ```ts
 * if (code === EXIT.NOT_FOUND) console.log("no such review");
 * ```
 */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** The service answered an error (5xx, or an answer the CLI does not understand). */
  SERVICE: 1,
  /** Bad flags or arguments, a value the service refused (400), or no token. */
  USAGE: 2,
  /** The review (404) does not exist. */
  NOT_FOUND: 3,
  /** Not possible now (409): cancel of a finished review, retry of a completed one. */
  CONFLICT: 4,
  /** The service could not be reached or did not answer in time. */
  UNREACHABLE: 5,
  /** The service refused the token (401). */
  AUTH: 6,
} as const;

/**
 * A failure the CLI reports as one line on stderr and an exit code; `body` is the service's JSON
 * answer when there was one (`--json` prints it).
 *
 * @example
 * ```ts
 * throw new CliError("review r1 not found", EXIT.NOT_FOUND);
 * ```
 */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number, readonly body?: unknown) {
    super(message);
    this.name = "CliError";
  }
}

/**
 * An HTTP answer of the service, its body parsed as JSON.
 *
 * @example
 * ```ts
 * const { status, body } = await client.request("GET", "/stats");
 * ```
 */
export interface Answer {
  status: number;
  body: unknown;
}

/**
 * What {@link createClient} needs: the service's base URL, the bearer, a `fetch` (tests inject
 * one) and the bound on each request, headers and body included.
 *
 * @example
 * ```ts
 * const options: ClientOptions = { url: "http://localhost:8000", token, timeoutMs: 15_000 };
 * ```
 */
export interface ClientOptions {
  url: string;
  token: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * The API client: `request` answers every HTTP status (the command decides what a 404 or a 409
 * means) and throws a {@link CliError} when there is no usable answer at all.
 *
 * @example
 * ```ts
 * const client = createClient({ url: "http://localhost:8000", token: "secret" });
 * const stats = expectOk(await client.request("GET", "/stats"), "stats");
 * ```
 */
export function createClient(options: ClientOptions): {
  request(method: string, path: string, body?: unknown): Promise<Answer>;
} {
  const base = options.url.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 15_000;
  return {
    async request(method, path, body) {
      const headers: Record<string, string> = {
        authorization: `Bearer ${options.token}`,
        accept: "application/json",
      };
      if (body !== undefined) headers["content-type"] = "application/json";
      // One signal bounds connecting, the headers and reading the body: a hung service ends here.
      const signal = AbortSignal.timeout(timeoutMs);
      let text: string;
      let response: Response;
      try {
        response = await doFetch(`${base}${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
        text = await response.text();
      } catch (error) {
        throw transportError(error, base, timeoutMs);
      }
      if (text.trim() === "") return { status: response.status, body: null };
      try {
        return { status: response.status, body: JSON.parse(text) };
      } catch {
        const type = response.headers.get("content-type") ?? "no content type";
        const start = text.replace(/\s+/g, " ").trim().slice(0, 60);
        throw new CliError(
          `${method} ${base}${path} answered ${response.status} (${type}), not JSON: ${start}` +
            " (is --url the review service?)",
          response.status === 401 ? EXIT.AUTH : EXIT.SERVICE,
        );
      }
    },
  };
}

/** What a failed `fetch` means, in words an operator can act on. */
function transportError(error: unknown, base: string, timeoutMs: number): CliError {
  const hint = "(check --url or REVIEWS_URL)";
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return new CliError(
      `${base} did not answer within ${timeoutMs / 1000} s ${hint}`,
      EXIT.UNREACHABLE,
    );
  }
  const text = describe(error);
  const reason = /connection refused/i.test(text)
    ? "connection refused"
    : /dns|lookup|resolve|name or service not known/i.test(text)
    ? "host not found"
    : /connection reset|broken pipe|connection closed/i.test(text)
    ? "connection closed by the server"
    : text.split("\n")[0].slice(0, 200);
  return new CliError(`cannot reach ${base}: ${reason} ${hint}`, EXIT.UNREACHABLE);
}

/** An error's message with its causes (Deno puts "Connection refused" in the cause chain). */
function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}

/**
 * The body of a successful answer, or a {@link CliError} with the exit code of its status; `what`
 * names the thing asked for (`review r1`), so a 404 reads "review r1 not found".
 *
 * @example
 * ```ts
 * const review = expectOk(await client.request("GET", "/reviews/r1"), "review r1");
 * ```
 */
export function expectOk(answer: Answer, what: string): unknown {
  if (answer.status >= 200 && answer.status < 300) return answer.body;
  throw answerError(answer, what);
}

/**
 * The {@link CliError} for an error answer: 401 → 6, 404 → 3, 409 → 4, 400/413/422 → 2, else 1.
 *
 * @example
 * ```ts
 * throw answerError({ status: 409, body: { error: "review already completed" } }, "review r1");
 * ```
 */
export function answerError(answer: Answer, what: string): CliError {
  const said = errorText(answer.body);
  const { status, body } = answer;
  if (status === 401) {
    return new CliError(
      "the service refused the token (401): check BACKEND_AUTH_TOKEN",
      EXIT.AUTH,
      body,
    );
  }
  if (status === 404) return new CliError(`${what} not found`, EXIT.NOT_FOUND, body);
  if (status === 409) {
    return new CliError(`${what}: ${said ?? "conflict (409)"}`, EXIT.CONFLICT, body);
  }
  if (status === 400 || status === 413 || status === 422) {
    return new CliError(`refused (${status}): ${said ?? "bad request"}`, EXIT.USAGE, body);
  }
  return new CliError(
    `the service answered ${status}${said ? `: ${said}` : ""}`,
    EXIT.SERVICE,
    body,
  );
}

/**
 * The `error` field of an error answer, on one line. Some routes put zod's whole issue list there
 * (a JSON array as text): its messages are what a person wants.
 */
function errorText(body: unknown): string | undefined {
  if (!body || typeof body !== "object" || !("error" in body)) return undefined;
  const text = String((body as { error: unknown }).error);
  let issues: unknown;
  try {
    issues = JSON.parse(text);
  } catch {
    // Plain text, as most routes answer.
  }
  const said = Array.isArray(issues)
    ? issues.map((i) => `${[i?.path].flat().join(".") || "request"}: ${i?.message}`).join("; ")
    : text;
  return said.replace(/\s+/g, " ").slice(0, 300);
}
