/**
 * Bounding text: by its UTF-8 size, so stored values stay under Deno KV's 64 KiB value limit
 * whatever characters an agent or a user sends, and by characters for what GitHub shows (comments,
 * reviews, check runs), without leaving a Markdown code block open.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Cuts `text` to at most `maxBytes` of UTF-8 (never inside a character), marking the cut with `…`.
 *
 * @example
 * ```ts
 * truncateUtf8("héllo", 4); // "h…"
 * ```
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = encoder.encode(text);
  if (bytes.length <= maxBytes) return text;
  const room = Math.max(0, maxBytes - 3); // "…" is 3 bytes
  return decoder.decode(bytes.slice(0, room)).replace(/\uFFFD+$/, "") + "…";
}

/**
 * Cuts to at most `max` characters, ending with `…` when cut (never inside a surrogate pair).
 *
 * @example
 * ```ts
 * cutText("hello", 3); // "he…"
 * ```
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return "";
  return `${text.slice(0, max - 1).replace(/[\uD800-\uDBFF]$/, "")}…`;
}

/**
 * One line of text: newlines flattened, trimmed, cut to `max` characters.
 *
 * @example
 * ```ts
 * oneLine("a\n  b", 10); // "a b"
 * ```
 */
export function oneLine(text: string, max: number): string {
  return cutText(text.slice(0, 4 * max).replace(/\s*[\r\n]+\s*/g, " ").trim(), max);
}

/**
 * Appends the closing fence when the Markdown ends inside a fenced code block.
 *
 * @example
 * ```ts
 * closeOpenFence("```ts\nconst a"); // "```ts\nconst a\n```"
 * ```
 */
export function closeOpenFence(text: string): string {
  let open: { char: string; size: number } | null = null;
  for (const line of text.split("\n")) {
    const match = line.match(/^ {0,3}(`{3,}|~{3,})(.*)$/);
    if (!match) continue;
    const char = match[1][0];
    if (!open) {
      if (char === "`" && match[2].includes("`")) continue; // Inline code, not a fence.
      open = { char, size: match[1].length };
    } else if (char === open.char && match[1].length >= open.size && !match[2].trim()) {
      open = null;
    }
  }
  return open ? `${text}\n${open.char.repeat(open.size)}` : text;
}

/**
 * Orders strings by UTF-16 code units (the same on every machine, unlike `localeCompare`).
 *
 * @example
 * ```ts
 * ["b", "a"].sort(compareText); // ["a", "b"]
 * ```
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
