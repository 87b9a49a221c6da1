/**
 * Pieces shared by the overview and the review page: the status badge and the review row.
 *
 * @module
 */
import type { PublicReview } from "../../review/service.ts";
import { duration } from "./format.ts";
import { ActionForm } from "./layout.tsx";

/**
 * A status as a coloured badge (colour and text, so it reads without colour too).
 *
 * @example
 * ```tsx
 * <StatusBadge status="running" />
 * ```
 */
export function StatusBadge(props: { status: string }) {
  return <span class={`badge ${props.status}`}>{props.status}</span>;
}

/**
 * A review id short enough for a table: a UUID's first 8 characters, keeping a retry's suffix
 * (the full id is the link's title and the review page's).
 *
 * @example
 * ```ts
 * shortId("6b7511f5-827e-438c-9ebf-dac9e6447875-retry-1"); // "6b7511f5…-retry-1"
 * ```
 */
export function shortId(id: string): string {
  const match = /^([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(.*)$/i.exec(id);
  if (match) return `${match[1]}…${match[2]}`;
  return id.length > 32 ? `${id.slice(0, 31)}…` : id;
}

/** How long a review waited for its slot, and how long it ran (so far). */
export function timings(review: PublicReview, now: number) {
  const wait = review.startedAt !== undefined
    ? review.startedAt - review.createdAt
    : review.finishedAt !== undefined
    ? undefined
    : now - review.createdAt;
  const ran = review.startedAt === undefined
    ? undefined
    : (review.finishedAt ?? now) - review.startedAt;
  return { wait, ran };
}

/** The line that says what a review is doing, or why it ended. */
export function latestLine(review: PublicReview): string {
  if (review.status === "running" || review.status === "queued") {
    return review.progress?.message ?? (review.status === "queued" ? "waiting to start" : "");
  }
  if (review.status === "completed") {
    return `${review.findingCount} finding${review.findingCount === 1 ? "" : "s"}`;
  }
  const reason = review.terminalReason ? `${review.terminalReason}: ` : "";
  return review.errorMessage ? `${reason}${review.errorMessage}` : reason.replace(/: $/, "");
}

/**
 * One review in the overview's table, with its actions.
 *
 * @example
 * ```tsx
 * <ReviewRow review={r} now={Date.now()} webBase="https://github.com" csrf={csrf} back="/" />
 * ```
 */
export function ReviewRow(
  props: { review: PublicReview; now: number; webBase: string; csrf: string; back: string },
) {
  const { review: r, now } = props;
  const { wait, ran } = timings(r, now);
  const line = latestLine(r);
  const unfinished = r.status === "pending" || r.status === "queued" || r.status === "running";
  const retryable = (r.status === "failed" || r.status === "cancelled") &&
    r.terminalReason !== "superseded";
  return (
    <tr data-review={r.id} data-status={r.status}>
      <td class="id">
        <a href={`/ui/reviews/${encodeURIComponent(r.id)}`} title={r.id}>{shortId(r.id)}</a>
      </td>
      <td>{r.repo}</td>
      <td>
        <a href={`${props.webBase}/${r.repo}/pull/${r.pullNumber}`} rel="noreferrer">
          #{r.pullNumber}
        </a>
      </td>
      <td class="mono">{r.headSha ? r.headSha.slice(0, 7) : "–"}</td>
      <td>
        <StatusBadge status={r.status} />
      </td>
      <td class="num">{r.attempts}</td>
      <td class="num">{duration(wait)}</td>
      <td class="num">{duration(ran)}</td>
      <td class="line" title={line}>{line}</td>
      <td class="actions">
        {unfinished
          ? (
            <ActionForm
              action={`/ui/reviews/${encodeURIComponent(r.id)}/cancel`}
              csrf={props.csrf}
              label="Cancel"
              confirm={`Cancel review ${r.id}?`}
              back={props.back}
            />
          )
          : null}
        {retryable
          ? (
            <ActionForm
              action={`/ui/reviews/${encodeURIComponent(r.id)}/retry`}
              csrf={props.csrf}
              label="Retry"
              back={props.back}
            />
          )
          : null}
      </td>
    </tr>
  );
}
