/**
 * One review: timeline, actions, live event log, summary, findings by severity (linked to the
 * diff on GitHub), usage and cost, and links to what was posted.
 *
 * @module
 */
import type { ReviewEvent, Severity } from "../../kv/records.ts";
import type { PublicReview } from "../../review/service.ts";
import { duration, isoTime } from "./format.ts";
import { ActionForm } from "./layout.tsx";
import { latestLine, StatusBadge } from "./status.tsx";

/** Everything the review page shows. */
export interface ReviewPageData {
  review: PublicReview;
  events: ReviewEvent[];
  /** Each finding's link into the pull request's diff, by index. */
  findingLinks: string[];
  /** The review that retried this one, when there is one. */
  retriedBy?: string;
  csrf: string;
  webBase: string;
  now: number;
  notice?: string;
}

/** Links taken from GitHub's answers are followed only when they are http(s). */
function safeLink(url: string | undefined): string | undefined {
  return url && /^https?:\/\//i.test(url) ? url : undefined;
}

const SEVERITIES: Severity[] = ["critical", "high", "medium", "low", "info"];

function Step(props: { label: string; at?: number; from?: number; active?: boolean }) {
  const since = props.at !== undefined && props.from !== undefined
    ? ` (+${duration(props.at - props.from)})`
    : "";
  return (
    <li class={props.at !== undefined ? "done" : props.active ? "now" : "todo"}>
      <b>{props.label}</b> {props.at !== undefined ? `${isoTime(props.at)}${since}` : "–"}
    </li>
  );
}

/**
 * The review page's content (the live region).
 *
 * @example
 * ```tsx
 * <ReviewDetail {...data} />
 * ```
 */
export function ReviewDetail(props: ReviewPageData) {
  const r = props.review;
  const findings = r.findings ?? [];
  const unfinished = r.status === "pending" || r.status === "queued" || r.status === "running";
  const ended = r.status === "completed" || r.status === "failed" || r.status === "cancelled";
  const self = `/ui/reviews/${encodeURIComponent(r.id)}`;
  const pull = `${props.webBase}/${r.repo}/pull/${r.pullNumber}`;
  return (
    <>
      {props.notice ? <p class="notice" role="status">{props.notice}</p> : null}
      <h1>
        {r.repo} <a href={pull} rel="noreferrer">#{r.pullNumber}</a>{" "}
        <StatusBadge status={r.status} />
      </h1>
      <p class="muted">
        review <span class="mono">{r.id}</span>
        {r.headSha
          ? (
            <>
              · head <span class="mono">{r.headSha.slice(0, 12)}</span>
            </>
          )
          : null}
        {r.title ? <>· {r.title}</> : null}
      </p>
      <p class="line" id="progress">{latestLine(r)}</p>
      <div class="actions">
        {unfinished
          ? (
            <ActionForm
              action={`${self}/cancel`}
              csrf={props.csrf}
              label="Cancel"
              confirm={`Cancel review ${r.id}?`}
              back={self}
            />
          )
          : null}
        {(r.status === "failed" || r.status === "cancelled") && r.terminalReason !== "superseded"
          ? <ActionForm action={`${self}/retry`} csrf={props.csrf} label="Retry" back={self} />
          : null}
        {r.retry
          ? <a href={`/ui/reviews/${encodeURIComponent(r.retry.of)}`}>retries {r.retry.of}</a>
          : null}
        {props.retriedBy
          ? (
            <a href={`/ui/reviews/${encodeURIComponent(props.retriedBy)}`}>
              retried as {props.retriedBy}
            </a>
          )
          : null}
      </div>
      <section class="grid">
        <div>
          <h2>Timeline</h2>
          <ol class="timeline">
            <Step label="pending" at={r.createdAt} />
            <Step
              label="queued"
              at={r.queuedAt}
              from={r.createdAt}
              active={r.status === "pending"}
            />
            <Step
              label="running"
              at={r.startedAt}
              from={r.createdAt}
              active={r.status === "queued"}
            />
            <Step
              label={ended ? r.status : "end"}
              at={r.finishedAt}
              from={r.createdAt}
              active={r.status === "running"}
            />
          </ol>
          <dl>
            <dt>Attempts</dt>
            <dd>
              {r.attempts}
              {r.handBacks ? ` (+${r.handBacks} handed back)` : ""}
              {r.deferrals ? ` (${r.deferrals} waits for agent limits)` : ""}
            </dd>
            {r.terminalReason
              ? (
                <>
                  <dt>Ended because</dt>
                  <dd>{r.terminalReason}</dd>
                </>
              )
              : null}
            {r.errorMessage
              ? (
                <>
                  <dt>Error</dt>
                  <dd class="error">{r.errorClass ? `${r.errorClass}: ` : ""}{r.errorMessage}</dd>
                </>
              )
              : null}
            <dt>Usage</dt>
            <dd>
              {r.usage
                ? `${
                  r.usage.model ?? "model ?"
                } · ${r.usage.tokensIn} in / ${r.usage.tokensOut} out · $${r.usage.cost.toFixed(4)}`
                : "none reported"}
            </dd>
            <dt>On GitHub</dt>
            <dd>
              {r.commentUrl
                ? <a href={safeLink(r.commentUrl)} rel="noreferrer">comment</a>
                : "no comment yet"}
              {r.inlineReviewUrl
                ? (
                  <>
                    · <a href={safeLink(r.inlineReviewUrl)} rel="noreferrer">inline review</a>
                  </>
                )
                : null}
              {r.checkRunUrl
                ? (
                  <>
                    · <a href={safeLink(r.checkRunUrl)} rel="noreferrer">check run</a>
                  </>
                )
                : null}
            </dd>
          </dl>
        </div>
        <div>
          <h2>Events</h2>
          {props.events.length === 0
            ? <p class="empty">No events yet.</p>
            : (
              <ol class="events" id="events">
                {props.events.slice().reverse().map((e) => (
                  <li>
                    <span class="mono muted">{isoTime(e.at).slice(11)}</span> <b>{e.type}</b>{" "}
                    {e.message}
                  </li>
                ))}
              </ol>
            )}
        </div>
      </section>
      {r.summary
        ? (
          <section>
            <h2>Summary</h2>
            <p class="summary">{r.summary}</p>
          </section>
        )
        : null}
      <section>
        <h2>Findings ({findings.length})</h2>
        {findings.length === 0 ? <p class="empty">{ended ? "No findings." : "None yet."}</p> : null}
        {SEVERITIES.map((severity) => {
          const group = findings.map((f, i) => ({ f, link: props.findingLinks[i] }))
            .filter(({ f }) => f.severity === severity);
          if (group.length === 0) return null;
          return (
            <div class={`findings ${severity}`}>
              <h3>
                <StatusBadge status={severity} /> {group.length}
              </h3>
              <ul>
                {group.map(({ f, link }) => (
                  <li>
                    <a href={link} rel="noreferrer" class="mono">
                      {f.file_path}
                      {f.line_start ? `:${f.line_start}` : ""}
                      {f.line_end && f.line_end !== f.line_start ? `-${f.line_end}` : ""}
                    </a>{" "}
                    <b>{f.title}</b>
                    <p>{f.description}</p>
                    {f.suggestion ? <p class="muted">{f.suggestion}</p> : null}
                  </li>
                ))}
              </ul>
            </div>
          );
        })}
      </section>
    </>
  );
}
