/**
 * What a running review shows while its agent works: session id, latest status line, findings
 * so far, usage, and an event log. Events arrive as fast as the agent sends them; KV sees at most
 * one fenced write per `PROGRESS_WRITE_MS` per review, the first one `PROGRESS_WRITE_MS` after
 * the session opens, and what is left when the session ends goes with the result's commit (a
 * session shorter than `PROGRESS_WRITE_MS` costs no progress write at all).
 *
 * @module
 */
import {
  MAX_REVIEW_EVENTS,
  type PendingProgress,
  type ProgressPatch,
  recordProgress,
} from "../kv/progress.ts";
import { progressChanges } from "../kv/changes.ts";
import type { ReviewEvent, ReviewRecord } from "../kv/records.ts";
import { addUsage } from "./agent_session.ts";
import type { AgentEvent } from "./agents/agent.ts";
import type { ReviewDeps } from "./deps.ts";

/**
 * Collects a session's progress and writes it in bounded batches.
 *
 * @example
 * ```ts
 * const progress = trackProgress(deps, review, leaseToken, () => controller.abort());
 * await runAgent(agent, request, { ...options, onEvent: progress.onEvent });
 * await progress.flush();
 * ```
 */
export interface ProgressTracker {
  /** Takes one agent event (never throws, never waits). */
  onEvent(event: AgentEvent): void;
  /** Adds an entry to the event log (attempt started, waiting, …). */
  note(type: string, message: string): void;
  /** The usage totals of the review so far (earlier sessions included). */
  usage(): ReviewRecord["usage"];
  /** Writes whatever is not written yet, now; tracking goes on. */
  checkpoint(): Promise<void>;
  /** Writes whatever is not written yet and stops the timer. */
  flush(): Promise<void>;
  /**
   * Stops tracking and hands over what is not written yet, for the commit that stores the
   * result to carry (once a write in flight has landed, so nothing lands after it).
   */
  handOver(): Promise<PendingProgress>;
}

/** Longest status line kept on the record. */
const MAX_STATUS_CHARS = 500;

/**
 * Starts tracking the session of the attempt holding `leaseToken`. `onLost` is called when a
 * write finds the lease gone.
 *
 * @example
 * ```ts
 * const progress = trackProgress(deps, review, leaseToken, () => abort("lease_lost"));
 * ```
 */
export function trackProgress(
  deps: ReviewDeps,
  review: ReviewRecord,
  leaseToken: string,
  onLost: () => void,
  options: { ownOutcome?: boolean } = {},
): ProgressTracker {
  const interval = deps.config.PROGRESS_WRITE_MS;
  const attempt = review.attempts;
  let usage = review.usage;
  let patch: ProgressPatch = {};
  let dirty = false;
  let events: ReviewEvent[] = [];
  let findings = 0;
  // The start commit counts as a write: the first progress write waits a whole interval, so a
  // short session's progress all goes with its result. An agent that ends the review through its
  // own callback (`ownOutcome`) has no result commit of ours to carry it, and the callback may end
  // the review (and the lease) at any moment: its first write and its usage are written at once.
  let lastWrite = options.ownOutcome ? -Infinity : deps.clock();
  let writing: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lost = false;
  let stopped = false;

  const write = async () => {
    if (!dirty && events.length === 0) return;
    const [p, e] = [patch, events];
    patch = {};
    events = [];
    dirty = false;
    lastWrite = deps.clock();
    try {
      const written = await recordProgress(deps.kv, review.id, leaseToken, p, e);
      if (!written && !lost) {
        lost = true;
        onLost();
      }
      // Progress is a change too: the live feed and metrics hear of it through the one seam.
      if (written) {
        deps.apply(progressChanges(written));
      }
    } catch (error) {
      // Progress is advisory: a failed write is logged and the next one carries the latest state.
      deps.log("warn", "progress write failed", { reviewId: review.id, error: String(error) });
    }
  };
  const run = () => {
    timer = undefined;
    void writeNow().then(() => {
      if (dirty || events.length) schedule();
    });
  };
  const schedule = () => {
    if (timer !== undefined || writing || lost || stopped) return;
    const wait = Math.max(0, lastWrite + interval - deps.clock());
    timer = setTimeout(run, wait);
  };
  /** One write at a time, so an older snapshot never lands after a newer one. */
  const writeNow = async () => {
    clearTimeout(timer);
    timer = undefined;
    while (writing) await writing;
    if (lost) return;
    writing = write().finally(() => writing = undefined);
    await writing;
  };
  const log = (type: string, message: string) => {
    events.push({ at: deps.clock(), type, message, attempt });
    if (events.length > MAX_REVIEW_EVENTS) events.shift();
  };
  const change = (p: ProgressPatch) => {
    patch = { ...patch, ...p };
    dirty = true;
  };

  return {
    onEvent(event) {
      switch (event.type) {
        case "session":
          change({ sessionId: event.sessionId.slice(0, 200) });
          log("session", `agent session ${event.sessionId.slice(0, 200)}`);
          break;
        case "status": {
          const message = event.message.slice(0, MAX_STATUS_CHARS);
          change({ progress: { message, at: deps.clock() } });
          log("status", message);
          break;
        }
        case "finding":
          findings++;
          change({ findingsSoFar: findings });
          log(
            "finding",
            `${event.finding.severity}: ${event.finding.file_path}` +
              `${event.finding.line_number ? `:${event.finding.line_number}` : ""} ` +
              event.finding.title,
          );
          break;
        case "usage":
          usage = addUsage(usage, event);
          change({ usage });
          if (options.ownOutcome) {
            void writeNow().then(() => {
              if (dirty || events.length) schedule();
            });
            return;
          }
          break;
        case "error":
          log("error", event.message);
          break;
        case "done":
          log("done", `agent finished with ${findings} findings`);
          break;
        default:
          return;
      }
      schedule();
    },
    note(type, message) {
      log(type, message);
      schedule();
    },
    usage: () => usage,
    checkpoint: () => writeNow(),
    async flush() {
      stopped = true;
      await writeNow();
    },
    async handOver() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      while (writing) await writing;
      const rest = { patch, events };
      patch = {};
      events = [];
      dirty = false;
      return rest;
    },
  };
}
