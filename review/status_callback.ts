/**
 * The optional status callback of the original design: on every status change,
 * `POST {API_URL}/api/internal/code-review-status/{reviewId}` with `X-Internal-Secret`.
 * Best effort and bounded: a slow or failing backend never holds a review back.
 *
 * @module
 */
import type { ReviewRecord } from "../kv/records.ts";

/** Sends a review's status somewhere; never throws. */
export type StatusNotifier = (review: ReviewRecord) => void;

/**
 * Creates the notifier, or a no-op when `apiUrl` is not set.
 *
 * @example
 * ```ts
 * const notify = createStatusNotifier({ apiUrl: "https://app.example", secret: "s" });
 * notify(review);
 * ```
 */
export function createStatusNotifier(options: {
  apiUrl?: string;
  secret?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  log?: (message: string, context: Record<string, unknown>) => void;
}): StatusNotifier {
  const { apiUrl } = options;
  if (!apiUrl) return () => {};
  const doFetch = options.fetch ?? fetch;
  const log = options.log ?? ((m, c) => console.warn(m, c));
  return (review) => {
    const url = `${apiUrl.replace(/\/+$/, "")}/api/internal/code-review-status/${
      encodeURIComponent(review.id)
    }`;
    const body = {
      status: review.status,
      sessionId: review.sessionId,
      errorMessage: review.errorMessage,
    };
    doFetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(options.secret ? { "x-internal-secret": options.secret } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
    }).then(async (res) => {
      await res.body?.cancel();
      if (!res.ok) {
        log("status callback answered an error", { reviewId: review.id, status: res.status });
      }
    }).catch((error) => {
      log("status callback failed", { reviewId: review.id, error: String(error) });
    });
  };
}
