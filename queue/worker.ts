/**
 * The worker: turns queue messages into review attempts and keeps a registry of this process's
 * running attempts, keyed by attempt (lease token), only to abort them: KV state decides
 * everything. On shutdown it hands running attempts back.
 *
 * The queue handler only claims the attempt (one atomic commit) and returns; the agent session
 * runs detached under its lease. So a redelivery while a session streams is a no-op, and a
 * handler never holds a queue delivery for minutes.
 *
 * @module
 */
import { startAttempt } from "../kv/attempts.ts";
import type { AbortRequest, Dispatch, MessageRef } from "../kv/changes.ts";
import { type ReviewDeps, txnContext } from "../review/deps.ts";
import { AttemptAborted } from "../review/errors.ts";
import { runAttempt } from "../review/pipeline.ts";
import { QueueMessageSchema } from "./message.ts";
import type { QueueTransport } from "./port.ts";
import { PROBE_MESSAGE } from "./select.ts";

/** A running attempt of this process. */
interface LocalAttempt {
  controller: AbortController;
  done: Promise<void>;
}

/** The worker's surface. */
export interface Worker {
  /** Queue handler: validates the message and starts the attempt it names, if still due. */
  handle(message: unknown): Promise<void>;
  /** Same-process fast path: start dispatched reviews without waiting for the queue. */
  kick(dispatched: Dispatch[]): void;
  /** Aborts this process's attempts asked to stop (by lease token); others notice through KV. */
  abort(requests: AbortRequest[]): void;
  /** Attempts running in this process. */
  readonly running: number;
  /** Resolves when no attempt runs in this process (or after `timeoutMs`). */
  idle(timeoutMs?: number): Promise<boolean>;
  /** Hands every running attempt back to the queue; resolves within `timeoutMs`. */
  shutdown(timeoutMs?: number): Promise<number>;
}

/** Options of {@link createWorker}. */
export interface WorkerOptions {
  /** This process's name in leases (shown in the KV inspector). */
  instance: string;
  transport: QueueTransport;
}

/**
 * Creates the worker. Wire the effects' `kick` and `abort` to it (see `main.ts`).
 *
 * @example
 * ```ts
 * const worker = createWorker(deps, { instance: "i1", transport });
 * transport.listen(worker.handle);
 * ```
 */
export function createWorker(deps: ReviewDeps, options: WorkerOptions): Worker {
  const attempts = new Map<string, LocalAttempt>();
  /** Claims in progress: shutdown waits for them, so a late claim is handed back too. */
  const claims = new Set<Promise<unknown>>();
  let stopping = false;

  async function handle(raw: unknown): Promise<void> {
    if ((raw as { type?: unknown } | null)?.type === PROBE_MESSAGE.type) return;
    const parsed = QueueMessageSchema.safeParse(raw);
    if (!parsed.success) {
      deps.log("warn", "dropped a malformed queue message", { issues: parsed.error.message });
      return;
    }
    await start(parsed.data);
  }

  /**
   * Starts what a message or a local dispatch names (with `ref`, its message is dropped in the
   * start commit); whether an attempt started.
   */
  async function start(
    message: { reviewId: string; token: string; ref?: MessageRef },
  ): Promise<boolean> {
    // Thrown, not dropped: the transport redelivers it to an instance that is not stopping.
    if (stopping) throw new Error("worker is shutting down");
    const claiming = claim(message);
    claims.add(claiming);
    return await claiming.finally(() => claims.delete(claiming));
  }

  /** Starts the attempt and registers it, as one step that shutdown waits for. */
  async function claim(
    message: { reviewId: string; token: string; ref?: MessageRef },
  ): Promise<boolean> {
    const started = await startAttempt(txnContext(deps), message, {
      instance: options.instance,
      leaseMs: deps.config.LEASE_MS,
    });
    if (!started) return false;
    const { review } = started;
    const leaseToken = review.lease!.token;
    const controller = new AbortController();
    const attempt: LocalAttempt = { controller, done: Promise.resolve() };
    attempts.set(leaseToken, attempt);
    // Shutdown began while this attempt was being claimed: it is handed straight back.
    if (stopping) controller.abort(new AttemptAborted("shutdown"));
    deps.apply(started.changes);
    attempt.done = runAttempt(deps, review, controller.signal, started.versionstamp)
      .catch((error) =>
        deps.log("error", "attempt crashed", { reviewId: review.id, error: String(error) })
      )
      .finally(() => attempts.delete(leaseToken));
    return true;
  }

  /**
   * The fast path of one dispatch. Its own message goes in the start commit: once the review
   * runs, its lease brings it back if this process dies, and the message would only be a no-op
   * to handle. This process's listener leaves the message alone meanwhile rather than race the
   * start for it, and is woken when the start did not happen (the message is still there).
   */
  function startHere(d: Dispatch) {
    const release = d.ref ? options.transport.holdHere?.(d.ref) : undefined;
    start({ reviewId: d.reviewId, token: d.token, ref: d.ref }).then(
      (started) => {
        release?.();
        if (!started && release) options.transport.wake?.();
      },
      (error) => {
        release?.();
        if (release) options.transport.wake?.();
        if (!stopping) {
          deps.log("warn", "fast-path dispatch failed; the queue message remains", {
            reviewId: d.reviewId,
            error: String(error),
          });
        }
      },
    );
  }

  return {
    handle,
    kick(dispatched) {
      const fastPath = deps.config.FAST_PATH;
      // The listener is woken for what the fast path leaves to it (delayed or not started here).
      let wake = false;
      for (const d of dispatched) {
        if (!fastPath || d.delayMs > 0) wake = true;
        else startHere(d);
      }
      if (wake) options.transport.wake?.();
    },
    abort(requests) {
      for (const { leaseToken } of requests) {
        attempts.get(leaseToken)?.controller.abort(new AttemptAborted("stop_requested"));
      }
    },
    get running() {
      return attempts.size;
    },
    async idle(timeoutMs = Infinity) {
      const deadline = Date.now() + timeoutMs;
      while (attempts.size > 0) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          Promise.all([...attempts.values()].map((a) => a.done)),
          new Promise((r) => timer = setTimeout(r, Math.min(left, 2_147_000_000))),
        ]);
        clearTimeout(timer);
      }
      return true;
    },
    async shutdown(timeoutMs = 4_000) {
      stopping = true;
      await Promise.allSettled([...claims]);
      // Attempts claimed meanwhile were aborted as they registered; all are handed back here.
      const handing = [...attempts.values()];
      for (const a of handing) a.controller.abort(new AttemptAborted("shutdown"));
      await this.idle(timeoutMs);
      return handing.length;
    },
  };
}
