/**
 * Sizes as Deno KV measures them. KV stores a value in V8's serialization, where a string takes one
 * byte per character while every character is Latin-1 and two bytes per character as soon as one
 * is not; `node:v8`'s `serialize` gives the same byte count KV checks against its 65,536-byte limit
 * (measured: the largest value `kv.set` accepts serializes to exactly 65,536 bytes).
 *
 * @module
 */
import { serialize } from "node:v8";

/** Deno KV's limit on one value, as serialized. */
export const MAX_KV_VALUE_BYTES = 65_536;

/** Review records stay under this, leaving a margin below {@link MAX_KV_VALUE_BYTES}. */
export const MAX_RECORD_BYTES = 65_000;

/** Deno KV's limit on one key, in bytes. */
export const MAX_KV_KEY_BYTES = 2_048;

/**
 * The size of a value as Deno KV counts it.
 *
 * @example
 * ```ts
 * kvValueBytes("a".repeat(10)) < kvValueBytes("中".repeat(10)); // true
 * ```
 */
export function kvValueBytes(value: unknown): number {
  return serialize(value).byteLength;
}

// deno-lint-ignore no-control-regex
const NOT_LATIN1 = /[^\u0000-\u00ff]/;

/**
 * The bytes KV takes for a string: its length, or twice that when one character is not Latin-1.
 *
 * @example
 * ```ts
 * kvStringBytes("héllo"); // 5
 * kvStringBytes("h😀"); // 6
 * ```
 */
export function kvStringBytes(text: string): number {
  return NOT_LATIN1.test(text) ? text.length * 2 : text.length;
}

/**
 * Cuts `text` so KV stores it in at most `maxBytes` (never inside a surrogate pair), marking a cut
 * with `…`.
 *
 * @example
 * ```ts
 * truncateForKv("a".repeat(100), 10); // "aaaaaaaaa…"
 * ```
 */
export function truncateForKv(text: string, maxBytes: number): string {
  if (kvStringBytes(text) <= maxBytes) return text;
  // "…" is not Latin-1, so the cut text is stored two bytes per character.
  const chars = Math.max(0, Math.floor(maxBytes / 2) - 1);
  return text.slice(0, chars).replace(/[\uD800-\uDBFF]$/, "") + "…";
}

/** A review record that would not fit one KV value. */
export class RecordTooLargeError extends Error {
  readonly bytes: number;
  constructor(what: string, bytes: number) {
    super(
      `${what} is ${bytes} bytes as Deno KV stores it, over its ${MAX_RECORD_BYTES}-byte bound`,
    );
    this.name = "RecordTooLargeError";
    this.bytes = bytes;
  }
}
