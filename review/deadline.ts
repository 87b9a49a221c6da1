/**
 * A bound on how long a caller waits for work that may hang (a KV that does not answer).
 *
 * @module
 */

/**
 * Resolves as `work` does, or rejects after `ms` (the work itself goes on; nobody waits for it).
 *
 * @example
 * ```ts
 * const stats = await withDeadline(5_000, () => serviceStats(deps));
 * ```
 */
export function withDeadline<T>(ms: number, work: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([work(), late]).finally(() => clearTimeout(timer));
}
