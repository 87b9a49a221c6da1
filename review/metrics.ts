/**
 * Prometheus metrics of the service: counters and histograms fed by every commit's changes
 * (`observe`, one of the effects' listeners), webhook answers, and per-owner gauges read from KV
 * when Prometheus scrapes. Each {@link createMetrics} call has its own registry, so tests and
 * several services in one process never share series.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Changes, ReviewChange } from "../kv/changes.ts";
import type { KvOpCounts } from "../kv/op_counts.ts";
import { type ReviewStatus, ReviewStatusSchema, TERMINAL_STATUSES } from "../kv/records.ts";
import { type OwnerUsage, totalsOf } from "./operations.ts";

/**
 * What {@link createMetrics} reads.
 *
 * @example
 * ```ts
 * const options: MetricsOptions = { ownersOverview: () => ownersOverview(deps, 1_000) };
 * ```
 */
export interface MetricsOptions {
  /** Owners with work, busiest first (`ownersOverview(deps, 1_000)`); read at every scrape. */
  ownersOverview: () => Promise<OwnerUsage[]>;
  /** Owners given their own gauges (the busiest); the totals cover all. Default 20. */
  topOwners?: number;
  /** This instance's KV operation totals (`countingKv`), read at every scrape. */
  kvOps?: KvOpCounts;
}

/**
 * The service's metrics. Its functions are plain closures: pass them around unbound.
 *
 * @example
 * ```ts
 * const listeners = [metrics.observe];
 * metrics.webhookAnswered(202, "pull_request");
 * ```
 */
export interface Metrics {
  /** Counts what a commit changed; never throws. */
  observe(changes: Changes): void;
  /** Counts an answer of `POST /webhooks/github` by status code and GitHub event. */
  webhookAnswered(status: number, event?: string): void;
  /** The Prometheus text exposition, with the owners' gauges read now. */
  render(): Promise<{ contentType: string; body: string }>;
}

/**
 * Events named in `ai_review_webhook_responses_total`; any other is `other` (bounded labels).
 *
 * @example
 * ```ts
 * WEBHOOK_EVENTS.includes("push"); // false: counted as event="other"
 * ```
 */
export const WEBHOOK_EVENTS: readonly string[] = [
  "pull_request",
  "issue_comment",
  "installation",
  "installation_repositories",
  "ping",
];

/** Queue waits run from sub-second (a free slot) to hours (an owner at its limit). */
const WAIT_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200];
/** Reviews take seconds (a small diff, a failure) to tens of minutes (a large diff). */
const DURATION_BUCKETS = [1, 5, 10, 20, 30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 3600];

const seconds = (ms: number) => Math.max(0, ms) / 1000;

/**
 * Builds the metrics on a registry of their own.
 *
 * @example
 * ```ts
 * const metrics = createMetrics({ ownersOverview: () => ownersOverview(deps, 1_000) });
 * const service = await startService({ config, kv, listeners: [metrics.observe] });
 * const { contentType, body } = await metrics.render();
 * ```
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  const topOwners = options.topOwners ?? 20;
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers });
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers });

  const entered = counter("ai_review_reviews_total", "Reviews entering a status.", ["status"]);
  const created = counter("ai_review_reviews_created_total", "Reviews created.", ["source"]);
  const ended = counter(
    "ai_review_reviews_ended_total",
    "Reviews ending, by terminal status and reason.",
    ["status", "reason"],
  );
  const queueWait = new Histogram({
    name: "ai_review_queue_wait_seconds",
    help: "From creation to the start of a review's first attempt.",
    buckets: WAIT_BUCKETS,
    registers,
  });
  const duration = new Histogram({
    name: "ai_review_duration_seconds",
    help: "From the start of a review's last attempt (else its creation) to its end.",
    labelNames: ["status"],
    buckets: DURATION_BUCKETS,
    registers,
  });
  const causes = {
    retry: counter("ai_review_retries_total", "Failed attempts sent back to the queue."),
    hand_back: counter("ai_review_hand_backs_total", "Attempts handed back on shutdown."),
    deferral: counter("ai_review_deferrals_total", "Attempts deferred by an agent limit or 429."),
    repair: counter("ai_review_sweeper_repairs_total", "Stalled reviews the sweeper dispatched."),
  };
  const errors = counter(
    "ai_review_errors_total",
    "Retried attempts and failed reviews, by error class.",
    ["class"],
  );
  const tokens = counter(
    "ai_review_agent_tokens_total",
    "Agent tokens of ended reviews.",
    ["direction"],
  );
  const cost = counter("ai_review_agent_cost_usd_total", "Agent cost of ended reviews (USD).");
  const webhooks = counter(
    "ai_review_webhook_responses_total",
    "Answers to GitHub webhook deliveries.",
    ["code", "event"],
  );
  const owner = {
    running: gauge("ai_review_owner_running", "Reviews holding a slot, per owner.", ["owner"]),
    pending: gauge("ai_review_owner_pending", "Reviews waiting for a slot, per owner.", ["owner"]),
    limit: gauge("ai_review_owner_limit", "Reviews an owner may have in flight.", ["owner"]),
  };
  const totals = {
    pending: gauge("ai_review_pending", "Reviews waiting for a slot."),
    inFlight: gauge("ai_review_in_flight", "Reviews holding a slot (queued or running)."),
    oldest: gauge("ai_review_oldest_pending_seconds", "Age of the oldest pending review."),
    lag: gauge(
      "ai_review_queue_lag_seconds",
      "Age of the oldest pending review whose owner has a free slot (dispatch lag).",
    ),
  };
  const kvUp = gauge("ai_review_kv_up", "Whether the owners overview could be read from KV.");
  const kvOps = options.kvOps;
  // Totals kept by the counting KV handle, copied into the registry when scraped.
  const kvCounter = (name: string, help: string, read: (c: KvOpCounts) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        if (kvOps) this.inc(read(kvOps));
      },
    });
  kvCounter(
    "ai_review_kv_commits_total",
    "KV atomic commits (set and delete included).",
    (c) => c.commits,
  );
  kvCounter(
    "ai_review_kv_commit_conflicts_total",
    "KV commits refused by a check.",
    (c) => c.conflicts,
  );
  kvCounter("ai_review_kv_reads_total", "KV reads (get, getMany and list calls).", (c) => c.reads);

  // Known label values start at zero, so rate() sees a series from the first scrape.
  for (const status of ReviewStatusSchema.options) entered.inc({ status }, 0);
  for (const direction of ["in", "out"]) tokens.inc({ direction }, 0);

  function count(change: ReviewChange) {
    const { review, from, cause } = change;
    if (cause && cause !== "progress") {
      // A repair may dispatch a queued review again (queued to queued): counted all the same.
      causes[cause].inc();
      if (cause === "retry") errors.inc({ class: review.errorClass ?? "unknown" });
    }
    if (from === review.status) return;
    entered.inc({ status: review.status });
    if (from === null) created.inc({ source: review.source });
    if (review.status === "running") {
      // Only the first start: a retry keeps `attempts` up, a hand-back or deferral gives the
      // attempt back but leaves its own count, so no map of seen reviews is needed.
      const first = review.attempts === 1 && review.handBacks === 0 && !review.deferrals;
      if (first && review.startedAt !== undefined) {
        queueWait.observe(seconds(review.startedAt - review.createdAt));
      }
    }
    if (!isTerminal(review.status)) return;
    const reason = review.terminalReason ?? "unknown";
    ended.inc({ status: review.status, reason });
    if (review.status === "failed") errors.inc({ class: reason });
    const end = review.finishedAt ?? review.startedAt ?? review.createdAt;
    duration.observe(
      { status: review.status },
      seconds(end - (review.startedAt ?? review.createdAt)),
    );
    if (review.usage) {
      tokens.inc({ direction: "in" }, Math.max(0, review.usage.tokensIn));
      tokens.inc({ direction: "out" }, Math.max(0, review.usage.tokensOut));
      cost.inc(Math.max(0, review.usage.cost));
    }
  }

  async function readOwners() {
    let overview: OwnerUsage[] | undefined;
    try {
      overview = await options.ownersOverview();
    } catch {
      overview = undefined;
    }
    // Reset after the read, not before: a concurrent scrape may have set values meanwhile.
    for (const g of [...Object.values(owner), ...Object.values(totals)]) g.reset();
    kvUp.set(overview ? 1 : 0);
    if (!overview) {
      // No sample beats a false zero: the totals vanish and `ai_review_kv_up` says why.
      for (const g of Object.values(totals)) g.remove({});
      return;
    }
    for (const o of overview.slice(0, topOwners)) {
      const labels = { owner: `${o.owner.type}:${o.owner.id}` };
      owner.running.set(labels, o.active);
      owner.pending.set(labels, o.pending);
      owner.limit.set(labels, o.limit);
    }
    const sums = totalsOf(overview);
    totals.pending.set(sums.pending);
    totals.inFlight.set(sums.active);
    totals.oldest.set(seconds(sums.oldestPendingMs ?? 0));
    totals.lag.set(seconds(sums.queueLagMs));
  }

  return {
    observe(changes) {
      for (const change of changes?.reviews ?? []) {
        try {
          count(change);
        } catch {
          // A malformed change must not cost the effects that follow (nor the other changes).
        }
      }
    },
    webhookAnswered(status, event) {
      const known = event !== undefined && WEBHOOK_EVENTS.includes(event);
      webhooks.inc({ code: String(status), event: known ? event : "other" });
    },
    async render() {
      await readOwners();
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

function isTerminal(status: ReviewStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}
