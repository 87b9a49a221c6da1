/**
 * Text output of the `reviews` CLI: aligned tables and field lists, plain when piped.
 *
 * @module
 */
import type { ReviewEvent } from "../kv/records.ts";
import type { OwnerUsage, ServiceStats } from "../review/operations.ts";
import type { PublicReview } from "../review/service.ts";

/**
 * How to render: `now` for ages of unfinished reviews, `columns` of the terminal (absent when
 * piped), `color` only on a terminal without `NO_COLOR`.
 *
 * @example
 * ```ts
 * const style: Style = { now: Date.now(), color: false };
 * ```
 */
export interface Style {
  now: number;
  columns?: number;
  color?: boolean;
}

/** Width of the last column when stdout is not a terminal (lines stay greppable, not endless). */
const PIPED_LAST_COLUMN = 80;

const SEVERITIES = ["critical", "high", "medium", "low", "info"] as const;
const COLORS: Record<string, number> = {
  completed: 32,
  running: 36,
  pending: 33,
  queued: 33,
  failed: 31,
  cancelled: 90,
  critical: 31,
  high: 31,
  medium: 33,
  low: 90,
  info: 90,
};

/**
 * Text from the service made safe for a terminal: agent output can hold escape sequences, so
 * every control character but the newline becomes a space.
 *
 * @example
 * ```ts
 * clean("a\x1b[2Jb"); // "a [2Jb"
 * ```
 */
export function clean(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/g, " ");
}

/**
 * One line of at most `max` characters (newlines folded, "…" where cut).
 *
 * @example
 * ```ts
 * cut("agent said\nno", 8); // "agent s…"
 * ```
 */
export function cut(text: string, max: number): string {
  const line = clean(text).replace(/\s+/g, " ").trim();
  return line.length <= max ? line : `${line.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * A duration for humans: `850ms`, `42s`, `3m05s`, `2h04m`, `3d02h`.
 *
 * @example
 * ```ts
 * age(185_000); // "3m05s"
 * ```
 */
export function age(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

/** `text` in the color its word has, when colors are on. */
function paint(text: string, word: string, style: Pick<Style, "color">): string {
  const code = COLORS[word];
  return style.color && code ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/**
 * Columns padded to their widest cell, two spaces apart, trailing spaces trimmed; `paintColumn`
 * colors one column after padding so the alignment holds.
 *
 * @example
 * ```ts
 * table(["ID", "STATUS"], [["r1", "running"]]); // "ID  STATUS\nr1  running"
 * ```
 */
export function table(
  headers: string[],
  rows: string[][],
  paintColumn?: { index: number; style: Pick<Style, "color"> },
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[], head: boolean) =>
    cells.map((cell, i) => {
      const padded = cell.padEnd(widths[i]);
      return !head && paintColumn?.index === i ? paint(padded, cell, paintColumn.style) : padded;
    }).join("  ").trimEnd();
  return [line(headers, true), ...rows.map((r) => line(r, false))].join("\n");
}

/** Queue wait: until the start, or until now while it waits. */
function waited(r: PublicReview, now: number): string {
  if (r.startedAt !== undefined) return age(r.startedAt - r.createdAt);
  return r.status === "pending" || r.status === "queued" ? age(now - r.createdAt) : "-";
}

/** Run time: start to finish, or start to now while it runs. */
function ran(r: PublicReview, now: number): string {
  if (r.startedAt === undefined) return "-";
  if (r.finishedAt !== undefined) return age(r.finishedAt - r.startedAt);
  return r.status === "running" ? age(now - r.startedAt) : "-";
}

/**
 * The `list` table, newest first as the service answered.
 *
 * @example
 * ```ts
 * console.log(formatReviews(page.reviews, { now: Date.now() }));
 * ```
 */
export function formatReviews(reviews: PublicReview[], style: Style): string {
  if (reviews.length === 0) return "no reviews";
  const headers = ["ID", "REPO", "PR", "HEAD", "STATUS", "ATTEMPTS", "WAIT", "DURATION"];
  const rows = reviews.map((r) => [
    clean(r.id),
    clean(r.repo),
    `#${r.pullNumber}`,
    (r.headSha ?? "-").slice(0, 7),
    r.status,
    String(r.attempts),
    waited(r, style.now),
    ran(r, style.now),
  ]);
  const used = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
    .reduce((sum, w) => sum + w + 2, 0);
  const room = style.columns ? Math.max(20, style.columns - used) : PIPED_LAST_COLUMN;
  reviews.forEach((r, i) => {
    const text = r.status === "running" ? r.progress?.message : r.errorMessage;
    rows[i].push(text ? cut(text, room) : "");
  });
  return table([...headers, "PROGRESS/ERROR"], rows, { index: 4, style });
}

/** `file:line`, `file:3-9`, or the file alone for a finding about the whole file. */
function place(f: NonNullable<PublicReview["findings"]>[number]): string {
  if (f.line_start === null) return clean(f.file_path);
  const end = f.line_end && f.line_end !== f.line_start ? `-${f.line_end}` : "";
  return `${clean(f.file_path)}:${f.line_start}${end}`;
}

const iso = (ms: number | undefined) => ms === undefined ? undefined : new Date(ms).toISOString();

/**
 * The `show` text: the review's fields, its findings grouped by severity, then its events.
 *
 * @example
 * ```ts
 * console.log(formatReview(review, events, { now: Date.now() }));
 * ```
 */
export function formatReview(r: PublicReview, events: ReviewEvent[], style: Style): string {
  const u = r.usage;
  const fields: Array<[string, string | number | undefined]> = [
    ["id", r.id],
    ["repo", r.repo],
    ["pr", `#${r.pullNumber}${r.title ? `  ${r.title}` : ""}`],
    ["owner", `${r.owner.type}:${r.owner.id}${r.owner.login ? ` (${r.owner.login})` : ""}`],
    ["head", r.headSha],
    ["status", r.status],
    ["terminalReason", r.terminalReason],
    ["errorClass", r.errorClass],
    ["errorMessage", r.errorMessage],
    ["progress", r.status === "running" ? r.progress?.message : undefined],
    ["cancelRequested", r.cancelRequested?.message],
    ["attempts", r.attempts],
    ["createdAt", iso(r.createdAt)],
    ["queuedAt", iso(r.queuedAt)],
    ["startedAt", iso(r.startedAt)],
    ["finishedAt", iso(r.finishedAt)],
    ["wait", waited(r, style.now)],
    ["duration", ran(r, style.now)],
    [
      "usage",
      u && `${u.model ?? "model?"}, ${u.tokensIn} in / ${u.tokensOut} out, $${u.cost.toFixed(4)}`,
    ],
    ["commentUrl", r.commentUrl],
    ["checkRunUrl", r.checkRunUrl],
    ["inlineReviewUrl", r.inlineReviewUrl],
    ["retry", r.retry && `#${r.retry.number} of ${r.retry.of} (chain ${r.retry.root})`],
    ["summary", r.summary],
  ];
  const shown = fields.filter((f) => f[1] !== undefined && f[1] !== "-");
  const width = Math.max(...shown.map(([k]) => k.length));
  const out = shown.map(([k, v]) => {
    const text = clean(String(v)).trim();
    return `${k.padEnd(width)}  ${k === "status" ? paint(text, text, style) : text}`;
  });

  const findings = r.findings ?? [];
  out.push("", `findings (${findings.length})`);
  for (const severity of SEVERITIES) {
    const group = findings.filter((f) => f.severity === severity);
    if (group.length === 0) continue;
    out.push(`  ${paint(severity, severity, style)} (${group.length})`);
    for (const f of group) {
      out.push(`    ${place(f)}  ${cut(f.title, 200)}`);
      if (f.description) out.push(`      ${cut(f.description, 300)}`);
    }
  }

  out.push("", `events (${events.length})`);
  if (events.length > 0) {
    const rows = events.map((e) => [
      iso(e.at) ?? "",
      clean(e.type),
      e.attempt === undefined ? "" : `#${e.attempt}`,
      cut(e.message, 300),
    ]);
    out.push(table(["AT", "TYPE", "ATTEMPT", "MESSAGE"], rows).replace(/^/gm, "  "));
  }
  return out.join("\n");
}

/** `org:7 (octo)`. */
function ownerName(o: OwnerUsage["owner"]): string {
  return clean(`${o.type}:${o.id}${o.login ? ` (${o.login})` : ""}`);
}

/**
 * The `owners` table; a `*` marks a limit the owner was given (not the default).
 *
 * @example
 * ```ts
 * console.log(formatOwners(answer.owners));
 * ```
 */
export function formatOwners(owners: OwnerUsage[]): string {
  if (owners.length === 0) return "no owners with work or a limit of their own";
  const rows = owners.map((o) => [
    ownerName(o.owner),
    `${o.active}/${o.limit}${o.customLimit ? "*" : ""}`,
    String(o.pending),
    o.oldestPendingMs === undefined ? "-" : age(o.oldestPendingMs),
  ]);
  const text = table(["OWNER", "SLOTS", "PENDING", "OLDEST PENDING"], rows);
  return owners.some((o) => o.customLimit) ? `${text}\n\n* the owner's own limit` : text;
}

/**
 * The answer of `limit`: the owner's limit after the change and its slots.
 *
 * @example
 * ```ts
 * formatOwnerUsage(usage); // "org:7 (octo): limit 3 (its own), 1 active, 0 pending"
 * ```
 */
export function formatOwnerUsage(o: OwnerUsage): string {
  const kind = o.customLimit ? "its own" : "the default";
  return `${
    ownerName(o.owner)
  }: limit ${o.limit} (${kind}), ${o.active} active, ${o.pending} pending`;
}

/**
 * The `stats` text, one value a line.
 *
 * @example
 * ```ts
 * console.log(formatStats(await client.request("GET", "/stats")));
 * ```
 */
export function formatStats(s: ServiceStats): string {
  const rows: Array<[string, string]> = [
    ["owners with work", String(s.owners)],
    ["active", String(s.active)],
    ["pending", String(s.pending)],
    ["oldest pending", s.oldestPendingMs === null ? "-" : age(s.oldestPendingMs)],
    ["queue lag", age(s.queueLagMs)],
    ["default limit", String(s.defaultLimit)],
  ];
  return rows.map(([k, v]) => `${k.padEnd(16)}  ${v}`).join("\n");
}
