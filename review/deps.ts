/**
 * What the review domain needs from the outside, passed in so tests substitute fakes.
 *
 * @module
 */
import type { Dispatch, EnqueueInto, TxnContext } from "../kv/owner_txn.ts";
import type { Config } from "./config.ts";
import type { GitHubClient } from "./github.ts";
import type { StatusNotifier } from "./status_callback.ts";

/** Structured logger; context must never hold secrets. */
export type Logger = (
  level: "info" | "warn" | "error",
  message: string,
  context?: Record<string, unknown>,
) => void;

/** Dependencies of the review domain. */
export interface ReviewDeps {
  kv: Deno.Kv;
  config: Config;
  clock: () => number;
  github: GitHubClient;
  /** fetch used for the agent (tests may inject one). */
  agentFetch?: typeof fetch;
  /** Writes a queue message into a commit (the queue port). */
  enqueue: EnqueueInto;
  /** Called after a commit that dispatched reviews (same-process fast path). */
  afterDispatch: (dispatched: Dispatch[]) => void;
  /** Aborts this process's attempt of a review that another commit ended (cancel, supersede). */
  abortLocal: (reviewId: string) => void;
  /** Called after every status change. */
  notify: StatusNotifier;
  log: Logger;
}

/**
 * Builds the context of one KV transaction at the current time.
 *
 * @example
 * ```ts
 * await cancelReview(txnContext(deps), id, "no longer needed");
 * ```
 */
export function txnContext(deps: ReviewDeps): TxnContext {
  return {
    kv: deps.kv,
    enqueue: deps.enqueue,
    now: deps.clock(),
    limit: deps.config.MAX_CONCURRENT_PER_OWNER,
  };
}

/**
 * A console logger printing one JSON line per entry.
 *
 * @example
 * ```ts
 * const log = consoleLogger();
 * log("info", "listening", { port: 8000 });
 * ```
 */
export function consoleLogger(): Logger {
  return (level, message, context) => {
    const line = JSON.stringify({ level, message, ...context });
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
}
