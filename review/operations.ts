/**
 * What operators do to the service (API, CLI, dashboard): retry a finished review, change an
 * owner's limit, and read the overview of owners and the queue.
 *
 * @module
 */
import { listOwners, setOwnerLimit } from "../kv/owners.ts";
import { ownerLimit } from "../kv/owner_txn.ts";
import { getReview } from "../kv/queries.ts";
import { newReview, type Owner, type OwnerState, type ReviewRecord } from "../kv/records.ts";
import { type ReviewDeps, txnContext } from "./deps.ts";
import { type PublicReview, submitReview, toPublicReview } from "./service.ts";

/** Result of {@link retry}. */
export type RetryOutcome =
  /** A new review of the same pull request was stored (it waits for a slot as any other). */
  | { kind: "created"; review: PublicReview }
  /** This review was retried already, or a review of the same head waits: that one. */
  | { kind: "exists"; review: PublicReview }
  /** Only failed and cancelled reviews are retried; `why` says what to do instead. */
  | { kind: "not_retryable"; review: PublicReview; why: string }
  | { kind: "not_found" };

/**
 * The id of the `number`th retry of a review chain starting at `root`.
 *
 * @example
 * ```ts
 * retryId("r1", 2); // "r1-retry-2"
 * ```
 */
export function retryId(root: string, number: number): string {
  return `${root}-retry-${number}`;
}

/**
 * Retries a failed or cancelled review: a new review of the same pull request and head, with the
 * same agent options, that takes a slot under the normal rules. Its id is derived from the one
 * retried, so retrying the same review twice (two clicks, two instances) makes one review.
 *
 * @example
 * ```ts
 * const outcome = await retry(deps, "r1");
 * if (outcome.kind === "created") console.log(outcome.review.id); // "r1-retry-1"
 * ```
 */
export async function retry(deps: ReviewDeps, id: string): Promise<RetryOutcome> {
  const original = await getReview(deps.kv, id);
  if (!original) return { kind: "not_found" };
  const why = notRetryable(original);
  if (why) return { kind: "not_retryable", review: toPublicReview(original), why };
  const root = original.retry?.root ?? original.id;
  const first = (original.retry?.number ?? 0) + 1;
  // A review made with a webhook knows its head; one made by the API or a /review command
  // learns the pull request's current head when it runs, as the original did.
  const headSha = original.source === "webhook" && !original.command ? original.headSha : undefined;
  // The id is derived, so two requests make one retry; an id someone else took (an API review
  // named like a retry) moves on to the next number.
  for (let number = first; number < first + MAX_RETRY_ID_TRIES; number++) {
    const record = newReview({
      id: retryId(root, number),
      source: original.source,
      owner: original.owner,
      repo: original.repo,
      pullNumber: original.pullNumber,
      headSha,
      baseSha: headSha ? original.baseSha : undefined,
      title: original.title,
      prUpdatedAt: original.prUpdatedAt,
      createdAt: deps.clock(),
      prompt: original.prompt,
      model: original.model,
      sessionInput: original.sessionInput,
      authToken: original.authToken,
      installationId: original.installationId,
      command: original.command,
      retry: { of: original.id, root, number },
    });
    // `again`: the head was reviewed (and failed); only a review of it still waiting stands in.
    const { review, created } = await submitReview(deps, record, {
      supersede: "none",
      again: true,
    });
    if (!created && review.id === record.id && review.retry?.of !== original.id) continue;
    deps.log("info", created ? "review retry queued" : "review retry exists", {
      reviewId: review.id,
      retryOf: original.id,
      owner: `${original.owner.type}:${original.owner.id}`,
      status: review.status,
    });
    return { kind: created ? "created" : "exists", review: toPublicReview(review) };
  }
  return {
    kind: "not_retryable",
    review: toPublicReview(original),
    why: `the retry ids ${retryId(root, first)}… are taken by other reviews`,
  };
}

/** Retry ids tried before giving up (others may have taken them through `POST /review`). */
const MAX_RETRY_ID_TRIES = 5;

function notRetryable(review: ReviewRecord): string | undefined {
  if (review.status !== "failed" && review.status !== "cancelled") {
    return `review is ${review.status}: only failed or cancelled reviews can be retried`;
  }
  if (review.terminalReason === "superseded") {
    return "review was superseded by a newer push: the pull request's current head has its own review";
  }
  return undefined;
}

/** An owner's slots as the API shows them. */
export interface OwnerUsage {
  owner: Owner;
  /** The limit that applies now (its own, else `MAX_CONCURRENT_PER_OWNER`). */
  limit: number;
  /** Whether `limit` is the owner's own. */
  customLimit: boolean;
  active: number;
  pending: number;
  /** Age of the oldest pending review, when one waits (overview only). */
  oldestPendingMs?: number;
}

/**
 * Sets an owner's own limit (`null`: back to the default), dispatching at once what a raised
 * limit frees; returns the owner's usage after the change.
 *
 * @example
 * ```ts
 * await changeOwnerLimit(deps, { type: "org", id: "1" }, 8); // { limit: 8, customLimit: true, … }
 * ```
 */
export async function changeOwnerLimit(
  deps: ReviewDeps,
  owner: Pick<Owner, "type" | "id">,
  limit: number | null,
): Promise<OwnerUsage> {
  const { state, changes } = await setOwnerLimit(txnContext(deps), owner, limit);
  deps.apply(changes);
  deps.log("info", "owner limit changed", {
    owner: `${owner.type}:${owner.id}`,
    limit: limit ?? `default (${deps.config.MAX_CONCURRENT_PER_OWNER})`,
    dispatched: changes.dispatched.length,
  });
  return usageOf(state, deps.config.MAX_CONCURRENT_PER_OWNER);
}

/** An owner's counters as the API shows them. */
function usageOf(state: OwnerState, defaultLimit: number): OwnerUsage {
  return {
    owner: state.owner,
    limit: ownerLimit(state, defaultLimit),
    customLimit: state.limit !== undefined,
    active: state.active,
    pending: state.pending,
  };
}

/** Owners shown by the overview at most. */
export const MAX_OWNERS_SHOWN = 200;

/**
 * Owners with work or a limit of their own, busiest first, with slots, pending count and the
 * age of the oldest pending review.
 *
 * @example
 * ```ts
 * const owners = await ownersOverview(deps);
 * ```
 */
export async function ownersOverview(
  deps: ReviewDeps,
  max = MAX_OWNERS_SHOWN,
): Promise<OwnerUsage[]> {
  const now = deps.clock();
  const owners = await listOwners(deps.kv, max);
  return owners.map(({ state, oldestPendingAt }) => ({
    ...usageOf(state, deps.config.MAX_CONCURRENT_PER_OWNER),
    ...(oldestPendingAt !== undefined
      ? { oldestPendingMs: Math.max(0, now - oldestPendingAt) }
      : {}),
  }));
}

/** Totals over a list of owners. */
export interface OwnerTotals {
  /** Owners with reviews pending or in flight. */
  owners: number;
  /** Reviews holding a slot (queued or running). */
  active: number;
  pending: number;
  /** Age of the oldest pending review of any owner. */
  oldestPendingMs: number | null;
  /**
   * Age of the oldest pending review whose owner has a free slot: how far dispatch is behind
   * (0 when every waiting review waits for its owner's limit, as it should).
   */
  queueLagMs: number;
}

/**
 * Sums an overview (for `/stats`, `/health` and the metrics scrape alike).
 *
 * @example
 * ```ts
 * const { pending, queueLagMs } = totalsOf(await ownersOverview(deps, 1_000));
 * ```
 */
export function totalsOf(owners: OwnerUsage[]): OwnerTotals {
  let oldest: number | null = null;
  let lag = 0;
  for (const o of owners) {
    if (o.oldestPendingMs === undefined) continue;
    oldest = Math.max(oldest ?? 0, o.oldestPendingMs);
    // Waiting behind the owner's own limit is not lag.
    if (o.active < o.limit) lag = Math.max(lag, o.oldestPendingMs);
  }
  return {
    owners: owners.filter((o) => o.active + o.pending > 0).length,
    active: owners.reduce((n, o) => n + o.active, 0),
    pending: owners.reduce((n, o) => n + o.pending, 0),
    oldestPendingMs: oldest,
    queueLagMs: lag,
  };
}

/** Totals over the owners with work (the 1,000 busiest), and the default limit. */
export type ServiceStats = OwnerTotals & { defaultLimit: number };

/**
 * Totals for `GET /stats`, the CLI's `stats` and `/health`'s queue lag.
 *
 * @example
 * ```ts
 * const { pending, queueLagMs } = await serviceStats(deps);
 * ```
 */
export async function serviceStats(deps: ReviewDeps): Promise<ServiceStats> {
  const owners = await ownersOverview(deps, 1_000);
  return { ...totalsOf(owners), defaultLimit: deps.config.MAX_CONCURRENT_PER_OWNER };
}
