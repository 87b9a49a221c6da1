/**
 * The status callback of the original design: on every status change of a review,
 * `POST {API_URL}/api/internal/code-review-status/{reviewId}` with `X-Internal-Secret`. Callbacks
 * of one review are sent one at a time, in the order the changes were committed (each carries the
 * record's `rev`), retried with backoff; a slow or failing backend never holds a review back.
 * Delivery is in-process: a callback still queued when the process dies is not sent.
 *
 * @module
 */
import type { ReviewRecord, Usage } from "../kv/records.ts";

/** Sends reviews' status changes somewhere; `notify` never throws and never waits. */
export interface StatusNotifier {
  notify(review: ReviewRecord): void;
  /**
   * Reports a review's usage totals to `POST {API_URL}/api/internal/code-review-usage/{id}`, in
   * line with the review's status callbacks (so it arrives before the `completed` one).
   */
  usage(reviewId: string, usage: Usage): void;
  /** Resolves when nothing is queued or being sent (tests, shutdown). */
  idle(timeoutMs?: number): Promise<boolean>;
  /** Stops sending; queued callbacks are dropped (and counted in the log). */
  close(): void;
}

/** One POST to the backend. */
interface Callback {
  reviewId: string;
  endpoint: "code-review-status" | "code-review-usage";
  /** What the log calls it: the status, or `usage`. */
  label: string;
  body: string;
}

/** Options of {@link createStatusNotifier}. */
export interface StatusNotifierOptions {
  apiUrl?: string;
  secret?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** Tries per callback (default 6: about 30 s of backoff). */
  maxTries?: number;
  baseDelayMs?: number;
  /** Callbacks queued at most, over all reviews; more are dropped and logged. */
  maxQueued?: number;
  log?: (message: string, context: Record<string, unknown>) => void;
}

/**
 * Creates the notifier, or a no-op when `apiUrl` is not set.
 *
 * @example
 * ```ts
 * const callbacks = createStatusNotifier({ apiUrl: "https://app.example", secret: "s" });
 * callbacks.notify(review);
 * ```
 */
export function createStatusNotifier(options: StatusNotifierOptions): StatusNotifier {
  const { apiUrl } = options;
  if (!apiUrl) {
    return { notify() {}, usage() {}, idle: () => Promise.resolve(true), close() {} };
  }
  const doFetch = options.fetch ?? fetch;
  const log = options.log ?? ((m, c) => console.warn(m, c));
  const maxTries = options.maxTries ?? 6;
  const baseDelayMs = options.baseDelayMs ?? 500;
  const maxQueued = options.maxQueued ?? 10_000;
  const queues = new Map<string, Callback[]>();
  const timers = new Map<ReturnType<typeof setTimeout>, () => void>();
  const sending = new Set<Promise<void>>();
  let queued = 0;
  let closed = false;

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.set(timer, resolve);
    });

  async function send(callback: Callback): Promise<void> {
    const { reviewId, endpoint, body } = callback;
    const url = `${apiUrl!.replace(/\/+$/, "")}/api/internal/${endpoint}/${
      encodeURIComponent(reviewId)
    }`;
    for (let attempt = 1; attempt <= maxTries && !closed; attempt++) {
      try {
        const res = await doFetch(url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(options.secret ? { "x-internal-secret": options.secret } : {}),
          },
          body,
          signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
        });
        await res.body?.cancel();
        // A 4xx other than 408/429 will not change on retry.
        if (res.ok || (res.status < 500 && res.status !== 408 && res.status !== 429)) {
          if (!res.ok) {
            log("status callback refused", { reviewId, what: callback.label, status: res.status });
          }
          return;
        }
        log("status callback answered an error", { reviewId, status: res.status });
      } catch (error) {
        log("status callback failed", { reviewId, attempt, error: String(error) });
      }
      if (attempt < maxTries && !closed) await wait(baseDelayMs * 2 ** (attempt - 1));
    }
    if (!closed) {
      log("status callback given up", { reviewId, what: callback.label, maxTries });
    }
  }

  async function drain(reviewId: string, line: Callback[]) {
    while (line.length && !closed) {
      await send(line[0]);
      line.shift();
      queued--;
    }
    queues.delete(reviewId);
  }

  function enqueue(callback: Callback) {
    if (closed) return;
    if (queued >= maxQueued) {
      log("status callback dropped: too many queued", { reviewId: callback.reviewId, queued });
      return;
    }
    queued++;
    const line = queues.get(callback.reviewId);
    if (line) {
      line.push(callback);
      return;
    }
    const fresh = [callback];
    queues.set(callback.reviewId, fresh);
    const p = drain(callback.reviewId, fresh).finally(() => sending.delete(p));
    sending.add(p);
  }

  return {
    notify(review) {
      enqueue({
        reviewId: review.id,
        endpoint: "code-review-status",
        label: review.status,
        body: JSON.stringify({
          status: review.status,
          sessionId: review.sessionId,
          errorMessage: review.errorMessage,
          terminalReason: review.terminalReason,
          attempts: review.attempts,
          rev: review.rev,
        }),
      });
    },
    usage(reviewId, usage) {
      // The original worker's payload (cloudflare-code-review-infra, `reportUsage`).
      enqueue({
        reviewId,
        endpoint: "code-review-usage",
        label: "usage",
        body: JSON.stringify({
          model: usage.model,
          totalTokensIn: usage.tokensIn,
          totalTokensOut: usage.tokensOut,
          totalCost: usage.cost,
        }),
      });
    },
    async idle(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (sending.size > 0) {
        if (Date.now() > deadline) return false;
        await Promise.race([Promise.allSettled([...sending]), wait(50)]);
      }
      return true;
    },
    close() {
      closed = true;
      for (const [timer, resolve] of timers) {
        clearTimeout(timer);
        resolve();
      }
      timers.clear();
      if (queued > 0) log("status callbacks dropped at shutdown", { queued });
    },
  };
}
