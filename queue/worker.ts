/**
 * The worker: turns queue messages into review attempts, tracks this process's running attempts
 * (only to abort them; KV state decides everything), recovers stalled reviews, and hands running
 * attempts back on shutdown.
 *
 * The queue handler only claims the attempt (one atomic commit) and returns; the agent session
 * runs detached under its lease. So a redelivery while a session streams is a no-op, and a
 * handler never holds a queue delivery for minutes.
 *
 * @module
 */
import { fillAllOwners, recoverStalled, startAttempt } from "../kv/lifecycle.ts";
import type { Dispatch } from "../kv/owner_txn.ts";
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
  /** Aborts this process's attempt of a review that was cancelled or superseded. */
  abortLocal(reviewId: string): void;
  /** Recovers expired leases and overdue messages, and fills free slots. */
  sweep(): Promise<number>;
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
 * Creates the worker. Wire `deps.afterDispatch` to `worker.kick` and `deps.abortLocal` to
 * `worker.abortLocal` (see `main.ts`).
 *
 * @example
 * ```ts
 * const worker = createWorker(deps, { instance: "i1", transport });
 * transport.listen(worker.handle);
 * ```
 */
export function createWorker(deps: ReviewDeps, options: WorkerOptions): Worker {
  const attempts = new Map<string, LocalAttempt>();
  let stopping = false;

  function log(level: "info" | "warn" | "error", msg: string, ctx?: Record<string, unknown>) {
    deps.log(level, msg, ctx);
  }

  async function handle(raw: unknown): Promise<void> {
    if ((raw as { type?: unknown } | null)?.type === PROBE_MESSAGE.type) return;
    const parsed = QueueMessageSchema.safeParse(raw);
    if (!parsed.success) {
      log("warn", "dropped a malformed queue message", { issues: parsed.error.message });
      return;
    }
    // Thrown, not dropped: the transport redelivers it to an instance that is not stopping.
    if (stopping) throw new Error("worker is shutting down");
    const started = await startAttempt(deps.kv, parsed.data, {
      instance: options.instance,
      leaseMs: deps.config.LEASE_MS,
      now: deps.clock(),
    });
    if (!started) return;
    const controller = new AbortController();
    // Shutdown began while this attempt was being claimed: hand it straight back.
    if (stopping) controller.abort(new AttemptAborted("shutdown"));
    const done = runAttempt(deps, started, controller.signal)
      .catch((error) =>
        log("error", "attempt crashed", { reviewId: started.id, error: String(error) })
      )
      .finally(() => attempts.delete(started.id));
    attempts.set(started.id, { controller, done });
  }

  function kick(dispatched: Dispatch[]) {
    const fastPath = deps.config.FAST_PATH;
    for (const d of dispatched) {
      if (!fastPath || d.delayMs > 0) continue;
      handle({ type: "run_review", reviewId: d.reviewId, token: d.token }).catch((error) => {
        if (!stopping) {
          log("warn", "fast-path dispatch failed; the queue message remains", {
            reviewId: d.reviewId,
            error: String(error),
          });
        }
      });
    }
    if (dispatched.length) options.transport.wake?.();
  }

  return {
    handle,
    kick,
    abortLocal(reviewId) {
      attempts.get(reviewId)?.controller.abort(new AttemptAborted("cancelled"));
    },
    async sweep() {
      const ctx = txnContext(deps);
      const recovered = await recoverStalled(ctx, {
        maxAttempts: deps.config.MAX_ATTEMPTS,
        // A queued review whose message was not taken within two leases is dispatched again; the
        // old message then carries a stale token and is a no-op wherever it lands.
        overdueMs: deps.config.LEASE_MS * 2,
        instance: options.instance,
      });
      const filled = await fillAllOwners(txnContext(deps));
      kick([...recovered, ...filled]);
      return recovered.length + filled.length;
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
      const handing = [...attempts.values()];
      for (const a of handing) a.controller.abort(new AttemptAborted("shutdown"));
      await this.idle(timeoutMs);
      return handing.length;
    },
  };
}
