/**
 * The sweeper's policy: what a sweep does and in which order — recover reviews nobody works on,
 * fill free slots of owners with work, and remove finished reviews past their retention in a
 * bounded batch. Each step reads only what is in flight; one sweep runs at a time per instance.
 *
 * @module
 */
import { mergeChanges } from "../kv/changes.ts";
import { fillActiveOwners, purgeFinished, recoverStalled } from "../kv/sweeps.ts";
import { type ReviewDeps, txnContext } from "../review/deps.ts";

/** Finished reviews removed per sweep, at most. */
export const PURGE_BATCH = 100;

/** What one sweep did. */
export interface SweepReport {
  dispatched: number;
  changed: number;
  purged: number;
}

/** A sweeper: `sweep` runs one (or joins the one running). */
export interface Sweeper {
  sweep(): Promise<SweepReport>;
}

/**
 * Creates the sweeper of one instance.
 *
 * @example
 * ```ts
 * const sweeper = createSweeper(deps, { instance: "i1" });
 * setInterval(() => sweeper.sweep(), 15_000);
 * ```
 */
export function createSweeper(deps: ReviewDeps, options: { instance: string }): Sweeper {
  let running: Promise<SweepReport> | undefined;
  async function once(): Promise<SweepReport> {
    const { config } = deps;
    const recovered = await recoverStalled(txnContext(deps), {
      maxAttempts: config.MAX_ATTEMPTS,
      // A queued review whose message was not taken within two leases is dispatched again; the
      // old message then carries a stale token and is a no-op wherever it lands.
      overdueMs: config.LEASE_MS * 2,
      skewMs: config.CLOCK_SKEW_MS,
      instance: options.instance,
    });
    const filled = await fillActiveOwners(txnContext(deps));
    const changes = mergeChanges(recovered, filled);
    deps.apply(changes);
    const cutoff = deps.clock() - config.RETENTION_DAYS * 86_400_000;
    const purged = await purgeFinished(deps.kv, cutoff, PURGE_BATCH);
    if (purged > 0) deps.log("info", "finished reviews removed after retention", { purged });
    return { dispatched: changes.dispatched.length, changed: changes.reviews.length, purged };
  }
  return {
    sweep() {
      running ??= once().finally(() => running = undefined);
      return running;
    },
  };
}
