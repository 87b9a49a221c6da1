/**
 * The overview: totals, owners with their slots and limits, and the filterable list of reviews.
 *
 * @module
 */
import type { ReviewStatus } from "../../kv/records.ts";
import type { OwnerUsage, ServiceStats } from "../../review/operations.ts";
import type { PublicReview } from "../../review/service.ts";
import { duration } from "./format.ts";
import { ReviewRow } from "./status.tsx";

/** The list's filters, as in the query string. */
export interface ReviewFilters {
  owner?: string;
  repo?: string;
  status?: ReviewStatus;
  cursor?: string;
}

/** Everything the overview shows. */
export interface OverviewData {
  stats: ServiceStats;
  owners: OwnerUsage[];
  reviews: PublicReview[];
  nextCursor: string | null;
  filters: ReviewFilters;
  csrf: string;
  webBase: string;
  now: number;
  /** The overview's own URL (actions come back to it). */
  self: string;
  notice?: string;
}

const STATUSES: ReviewStatus[] = [
  "pending",
  "queued",
  "running",
  "completed",
  "failed",
  "cancelled",
];

function query(filters: ReviewFilters): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  const text = params.toString();
  return text ? `?${text}` : "";
}

/**
 * The overview's content (the live region).
 *
 * @example
 * ```tsx
 * <Overview {...data} />
 * ```
 */
export function Overview(props: OverviewData) {
  const { stats, filters } = props;
  return (
    <>
      {props.notice ? <p class="notice" role="status">{props.notice}</p> : null}
      <section class="totals" aria-label="totals">
        <div>
          <b id="total-running">{stats.active}</b> in flight
        </div>
        <div>
          <b id="total-pending">{stats.pending}</b> pending
        </div>
        <div>
          oldest pending <b>{duration(stats.oldestPendingMs)}</b>
        </div>
        <div>
          queue lag <b>{duration(stats.queueLagMs)}</b>
        </div>
        <div>
          <b>{stats.owners}</b> busy owners · default limit {stats.defaultLimit}
        </div>
      </section>
      <section>
        <h2>Owners</h2>
        {props.owners.length === 0
          ? <p class="empty">No owner has reviews waiting or running.</p>
          : (
            <div class="scroll">
              <table class="owners">
                <thead>
                  <tr>
                    <th>Owner</th>
                    <th>Slots</th>
                    <th>Pending</th>
                    <th>Oldest pending</th>
                    <th>Limit</th>
                  </tr>
                </thead>
                <tbody>
                  {props.owners.map((o) => {
                    const key = `${o.owner.type}:${o.owner.id}`;
                    return (
                      <tr data-owner={key}>
                        <td>
                          <a href={`/${query({ owner: key })}`}>{o.owner.login ?? key}</a>
                          <span class="muted">{key}</span>
                        </td>
                        <td>
                          <meter min={0} max={Math.max(o.limit, o.active, 1)} value={o.active} />
                          {" "}
                          <span class="slots">{o.active}/{o.limit}</span>
                          {o.customLimit ? <span class="muted">own limit</span> : null}
                        </td>
                        <td class="num">{o.pending}</td>
                        <td class="num">{duration(o.oldestPendingMs)}</td>
                        <td>
                          <form
                            method="post"
                            action={`/ui/owners/${o.owner.type}/${
                              encodeURIComponent(o.owner.id)
                            }/limit`}
                            class="inline limit"
                          >
                            <input type="hidden" name="_csrf" value={props.csrf} />
                            <input type="hidden" name="back" value={props.self} />
                            <input
                              type="number"
                              name="limit"
                              min={0}
                              max={100}
                              value={String(o.limit)}
                              aria-label={`limit of ${key}`}
                            />
                            <button type="submit">Set</button>
                            {o.customLimit
                              ? <button type="submit" name="limit" value="default">Default</button>
                              : null}
                          </form>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
      </section>
      <section>
        <h2>Reviews</h2>
        <form method="get" action="/" class="filters" data-no-live>
          <input name="owner" placeholder="owner (org:123)" value={filters.owner ?? ""} />
          <input name="repo" placeholder="repo (owner/name)" value={filters.repo ?? ""} />
          <select name="status" aria-label="status">
            <option value="">any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s} selected={filters.status === s}>{s}</option>
            ))}
          </select>
          <button type="submit">Filter</button>
          {filters.owner || filters.repo || filters.status ? <a href="/">clear</a> : null}
        </form>
        {props.reviews.length === 0 ? <p class="empty">No reviews match.</p> : (
          <div class="scroll">
            <table class="reviews">
              <thead>
                <tr>
                  <th>Review</th>
                  <th>Repository</th>
                  <th>PR</th>
                  <th>Head</th>
                  <th>Status</th>
                  <th>Attempts</th>
                  <th>Queue wait</th>
                  <th>Duration</th>
                  <th>Progress / error</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                {props.reviews.map((r) => (
                  <ReviewRow
                    review={r}
                    now={props.now}
                    webBase={props.webBase}
                    csrf={props.csrf}
                    back={props.self}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
        <nav class="pager">
          {filters.cursor
            ? <a href={`/${query({ ...filters, cursor: undefined })}`}>Newest</a>
            : null}
          {props.nextCursor
            ? <a href={`/${query({ ...filters, cursor: props.nextCursor })}`}>Older →</a>
            : null}
        </nav>
      </section>
    </>
  );
}
