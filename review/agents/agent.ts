/**
 * The agent seam: a {@link ReviewAgent} reviews one pull request and reports what it does as a
 * stream of {@link AgentEvent}s. Each kind (`sse`, `openai`, `kilo`, `local`) is one file in this
 * folder; the pipeline, findings mapping, bounds, retries and timeouts are the same for all.
 *
 * @module
 */
import type { AgentFinding } from "../agent_events.ts";

/** The agent kinds `AGENT_KIND` selects. */
export const AGENT_KINDS = ["sse", "openai", "kilo", "local"] as const;
/** An agent kind. */
export type AgentKind = typeof AGENT_KINDS[number];

/**
 * What an agent is asked to review.
 *
 * @example
 * ```ts
 * const request: AgentRequest = {
 *   reviewId: "r1", attempt: 1, repo: "octo/app", pullNumber: 7, headSha: "h", baseSha: "b",
 *   title: "Fix login", diff: "diff --git a/x b/x\n", files: ["x"],
 * };
 * ```
 */
export interface AgentRequest {
  reviewId: string;
  /** The session's ordinal for this review: never the same for two sessions. */
  attempt: number;
  /** `owner/name`. */
  repo: string;
  pullNumber: number;
  headSha: string;
  baseSha: string;
  title: string;
  /** The pull request's description, when known. */
  body?: string;
  /** The PR's head branch name, when known (the `kilo` agent checks it out). */
  headRef?: string;
  /** Model asked for (the review's, else `AGENT_MODEL`). */
  model?: string;
  /** Extra instructions for the reviewer (the API's `prompt`; later the repo config's). */
  instructions?: string;
  /** The unified diff, already filtered and cut to `MAX_DIFF_BYTES`. */
  diff: string;
  /** Every path the full diff touches. */
  files: string[];
  /** Pass-through from `POST /review` (the `sse` and `kilo` wire formats carry it). */
  sessionInput?: Record<string, unknown>;
  /**
   * The session id an earlier attempt of this review reported. Its process may have died with
   * that session still running: an agent that can stop a remote session (`kilo`) stops it before
   * opening a new one, so two never run (and post) at once.
   */
  previousSessionId?: string;
  /** Bearer token for this review's session (from `POST /review`), else the agent's own. */
  authToken?: string;
  /**
   * Where an agent that decides the outcome itself (`kilo`) reports it: the service's
   * `POST /callbacks/reviews/:id`, with headers that authenticate this attempt.
   */
  callback?: { url: string; headers: Record<string, string> };
}

/** Usage to add to the review's totals (each field optional; numbers are increments). */
export interface AgentUsage {
  model?: string;
  tokensIn?: number;
  tokensOut?: number;
  /** US dollars. */
  cost?: number;
}

/**
 * What an agent reports while it works. A session ends with exactly one `done` or `error`
 * (or with the agent throwing a `ReviewError`, or the abort signal's reason).
 *
 * @example
 * ```ts
 * emit({ type: "status", message: "reading src/app.ts" });
 * emit({ type: "usage", model: "gpt-4o-mini", tokensIn: 1200, tokensOut: 300 });
 * emit({ type: "done" });
 * ```
 */
export type AgentEvent =
  /** The agent's own session id, as soon as it is known. */
  | { type: "session"; sessionId: string }
  /** Progress text for operators. */
  | { type: "status"; message: string }
  | { type: "finding"; finding: AgentFinding }
  /** The review's summary text (the last one wins). */
  | { type: "summary"; text: string }
  | ({ type: "usage" } & AgentUsage)
  /** Output the agent sent that did not validate (counted as the review's `skippedEvents`). */
  | { type: "skipped"; reason: string }
  /** The session failed; `retryAfterMs` with a rate limit (`429`) defers without an attempt. */
  | {
    type: "error";
    message: string;
    retryable: boolean;
    retryAfterMs?: number;
    rateLimited?: boolean;
  }
  | { type: "done" };

/**
 * What an agent gets besides the request.
 *
 * @example
 * ```ts
 * await agent.review(request, { signal, emit: (e) => events.push(e), fetch, log: console.warn });
 * ```
 */
export interface AgentContext {
  /** Cancel, supersede, shutdown, lost lease: stop at once and rethrow `signal.reason`. */
  signal: AbortSignal;
  /** Reports an event; never throws. */
  emit: (event: AgentEvent) => void;
  /** For network kinds (tests inject one). */
  fetch: typeof fetch;
  /** Warnings worth an operator's attention; context never holds secrets. */
  log: (message: string, context: Record<string, unknown>) => void;
  /**
   * Saves what was reported so far (progress, usage) now rather than at the next periodic
   * write: an agent about to wait (`kilo`, for its callback) calls it first. Never throws.
   */
  checkpoint?: () => Promise<void>;
}

/**
 * A review agent. `review` resolves once it has emitted `done` or `error`; it may also throw a
 * `ReviewError` (retryable or final) or, when aborted, `signal.reason`.
 *
 * @example
 * ```ts
 * const agent: ReviewAgent = {
 *   kind: "local",
 *   async review(_request, { emit }) {
 *     emit({ type: "summary", text: "nothing to say" });
 *     emit({ type: "done" });
 *   },
 * };
 * ```
 */
export interface ReviewAgent {
  readonly kind: AgentKind;
  /**
   * The agent posts to GitHub itself and reports the outcome to `request.callback` (`kilo`):
   * the service then neither stores findings nor comments, and the callback ends the review.
   */
  readonly decidesOutcome?: boolean;
  /**
   * Runs one session. An agent holding a remote session stops it when aborted (`kilo` calls
   * `interruptSession`) before rethrowing `signal.reason`.
   */
  review(request: AgentRequest, context: AgentContext): Promise<void>;
}
