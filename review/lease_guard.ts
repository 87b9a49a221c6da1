/**
 * Keeps a running attempt honest about its lease: renews it, and aborts the attempt the moment the
 * review shows that the lease is gone or that a cancel or supersede asked it to stop. Three
 * sources: `kv.watch` on the review (immediate for this process's writes locally, and for every
 * instance's on Deno Deploy), a re-read every `LEASE_CHECK_MS` (the bound across processes on one
 * local KV file, where watch sees only its own process), and the renewal itself. An attempt that
 * cannot renew stops itself before its lease runs out, so nobody else takes over while it streams.
 *
 * @module
 */
import { renewLease, watchReview } from "../kv/attempts.ts";
import { getReview } from "../kv/queries.ts";
import type { ReviewRecord } from "../kv/records.ts";
import { holdsLease } from "../kv/transitions.ts";
import type { ReviewDeps } from "./deps.ts";
import { AttemptAborted } from "./errors.ts";

/** A running guard. */
export interface LeaseGuard {
  /** Stops watching and renewing; resolves when the watch has closed. */
  stop(): Promise<void>;
}

/**
 * Starts guarding `started`'s lease; aborts `controller` with an {@link AttemptAborted}.
 *
 * @example
 * ```ts
 * const guard = guardLease(deps, started, controller);
 * try { await work(controller.signal); } finally { await guard.stop(); }
 * ```
 */
export function guardLease(
  deps: ReviewDeps,
  started: ReviewRecord,
  controller: AbortController,
): LeaseGuard {
  const { kv, config, clock } = deps;
  const token = started.lease!.token;
  let expiresAt = started.lease!.expiresAt;
  let stopped = false;
  const inFlight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
  };
  const abort = (kind: "lease_lost" | "stop_requested", message?: string) => {
    if (!controller.signal.aborted) controller.abort(new AttemptAborted(kind, message));
  };
  const observe = (review: ReviewRecord | null) => {
    if (stopped) return;
    if (!holdsLease(review, token)) abort("lease_lost");
    else if (review!.cancelRequested) abort("stop_requested");
  };
  const watch = watchReview(kv, started.id).getReader();
  const watching = (async () => {
    try {
      while (!stopped) {
        const { done, value } = await watch.read();
        if (done) return;
        observe(value);
      }
    } catch (error) {
      if (!stopped) deps.log("warn", "lease watch ended", { reviewId: started.id, error });
    }
  })();
  // Short leases (tests) are checked more often than LEASE_CHECK_MS.
  const checkMs = Math.max(10, Math.min(config.LEASE_CHECK_MS, Math.floor(config.LEASE_MS / 4)));
  const check = setInterval(() => {
    // Renewal failures leave the attempt running only while its lease has not run out here.
    if (clock() >= expiresAt - checkMs) {
      abort("lease_lost", "attempt aborted: its lease could not be renewed in time");
      return;
    }
    track(
      getReview(kv, started.id).then(
        observe,
        (error) =>
          deps.log("warn", "lease check failed", { reviewId: started.id, error: String(error) }),
      ),
    );
  }, checkMs);
  // Three renewals per lease: two may fail before the attempt stops itself.
  const renewEvery = Math.max(10, Math.floor(config.LEASE_MS / 3));
  const renewal = setInterval(() => {
    const next = clock() + config.LEASE_MS;
    track(
      renewLease(kv, started.id, token, next).then(
        (review) => {
          if (review) expiresAt = next;
          observe(review);
        },
        (error) =>
          deps.log("warn", "lease renewal failed", { reviewId: started.id, error: String(error) }),
      ),
    );
  }, renewEvery);
  return {
    async stop() {
      stopped = true;
      clearInterval(check);
      clearInterval(renewal);
      await watch.cancel().catch(() => {});
      await watching;
      await Promise.allSettled([...inFlight]);
    },
  };
}
