/**
 * Reads under Deno KV's limits: `getMany` takes at most 10 keys (one more throws "Too many
 * ranges"), so every multi-key read goes through {@link getManyBatched}.
 *
 * @module
 */
import { withLockRetry } from "./commit.ts";

/** Deno KV's limit on the keys of one `getMany`. */
export const GET_MANY_LIMIT = 10;

/**
 * `kv.getMany` for any number of keys, in batches of ten, results in the keys' order.
 *
 * @example
 * ```ts
 * const entries = await getManyBatched<ReviewRecord>(kv, ids.map((id) => ["reviews", id]));
 * ```
 */
export async function getManyBatched<T>(
  kv: Deno.Kv,
  keyList: readonly Deno.KvKey[],
): Promise<Deno.KvEntryMaybe<T>[]> {
  const out: Deno.KvEntryMaybe<T>[] = [];
  for (let i = 0; i < keyList.length; i += GET_MANY_LIMIT) {
    const batch = keyList.slice(i, i + GET_MANY_LIMIT);
    out.push(...await withLockRetry(() => kv.getMany<T[]>(batch)));
  }
  return out;
}
