/**
 * What the review domain needs from the outside, passed in so tests substitute fakes.
 *
 * @module
 */
import type { Changes } from "../kv/changes.ts";
import type { DropFrom, EnqueueInto, TxnContext } from "../kv/owner_txn.ts";
import type { Usage } from "../kv/records.ts";
import type { ReviewAgent } from "./agents/agent.ts";
import type { Config } from "./config.ts";
import type { GitHubClients } from "./github.ts";

/** Log levels, least severe first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Structured logger; context must never hold secrets. */
export type Logger = (
  level: LogLevel,
  message: string,
  context?: Record<string, unknown>,
) => void;

/** Dependencies of the review domain. */
export interface ReviewDeps {
  kv: Deno.Kv;
  config: Config;
  clock: () => number;
  /** GitHub, per credential scope: `github.forInstallation(review.installationId)`. */
  github: GitHubClients;
  /** The review agent `AGENT_KIND` selected. */
  agent: ReviewAgent;
  /** fetch used for the agent (tests may inject one). */
  agentFetch?: typeof fetch;
  /** Reports a review's usage totals to the backend (`API_URL`); never throws or waits. */
  reportUsage: (reviewId: string, usage: Usage) => void;
  /** Writes a queue message into a commit (the queue port). */
  enqueue: EnqueueInto;
  /** Removes a queue message sent earlier, within a commit (the queue port). */
  drop: DropFrom;
  /** Applies what a commit changed (`review/effects.ts`); never throws. */
  apply: (changes: Changes) => void;
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
    drop: deps.drop,
    now: deps.clock(),
    limit: deps.config.MAX_CONCURRENT_PER_OWNER,
  };
}

/**
 * A console logger printing one JSON line per entry at `minLevel` or above, with an ISO
 * timestamp; fields that are `undefined` are left out.
 *
 * @example
 * ```ts
 * const log = consoleLogger("info");
 * log("info", "listening", { port: 8000 });
 * ```
 */
export function consoleLogger(minLevel: LogLevel = "info"): Logger {
  const least = LOG_LEVELS.indexOf(minLevel);
  return (level, message, context) => {
    if (LOG_LEVELS.indexOf(level) < least) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...context });
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
}
