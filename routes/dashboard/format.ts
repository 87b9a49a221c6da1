/**
 * Small formatting helpers of the dashboard: ages, durations, times and links to GitHub.
 *
 * @module
 */
import { sha256 } from "../auth.ts";

/**
 * A duration as people read it: `850 ms`, `12 s`, `4 min 3 s`, `2 h 5 min`, `3 d 4 h`.
 *
 * @example
 * ```ts
 * duration(243_000); // "4 min 3 s"
 * ```
 */
export function duration(ms: number | undefined | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return "–";
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1_000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/**
 * A timestamp as ISO 8601 in UTC, to the second.
 *
 * @example
 * ```ts
 * isoTime(0); // "1970-01-01 00:00:00Z"
 * ```
 */
export function isoTime(at: number | undefined): string {
  if (at === undefined) return "–";
  return new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/**
 * The GitHub web address that goes with an API address (`https://api.github.com` →
 * `https://github.com`; GitHub Enterprise `https://ghe.example/api/v3` → `https://ghe.example`).
 *
 * @example
 * ```ts
 * githubWebBase("https://api.github.com"); // "https://github.com"
 * ```
 */
export function githubWebBase(apiUrl: string): string {
  const url = new URL(apiUrl);
  if (url.hostname === "api.github.com") return "https://github.com";
  return `${url.origin}${url.pathname.replace(/\/api\/v3\/?$/, "").replace(/\/$/, "")}`;
}

/**
 * The anchor GitHub gives a file (and a line on the new side) in a pull request's diff.
 *
 * @example
 * ```ts
 * await diffAnchor("src/app.ts", 12); // "diff-<sha256 of the path>R12"
 * ```
 */
export async function diffAnchor(path: string, line: number | null | undefined): Promise<string> {
  const hex = [...await sha256(path)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return line ? `diff-${hex}R${line}` : `diff-${hex}`;
}
