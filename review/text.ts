/**
 * Bounding text by its UTF-8 size, so stored values stay under Deno KV's 64 KiB value limit
 * whatever characters an agent or a user sends.
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
