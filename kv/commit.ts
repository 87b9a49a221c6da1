/**
 * Retrying optimistic transactions. Deno KV commits fail with `ok: false` when a checked entry
 * changed, and a local SQLite file shared by two processes can throw `database is locked`: both
 * mean "read again and retry", never "give up and lose the write".
 *
 * @module
 */

/** Thrown when a transaction keeps conflicting; a bug or extreme contention, never silent. */
export class TransactionConflictError extends Error {
  constructor(what: string, tries: number) {
    super(`${what}: still conflicting after ${tries} tries`);
    this.name = "TransactionConflictError";
  }
}

const MAX_TRIES = 200;

/** Whether an error is the SQLite busy error a shared local KV file throws. */
export function isDatabaseLocked(error: unknown): boolean {
  return error instanceof Error && /database is locked|database is busy/i.test(error.message);
}

/**
 * Runs `attempt` until it returns a value other than `undefined`, which means its atomic commit
 * succeeded (or it decided there is nothing to do and returned a value without committing).
 * `attempt` returns `undefined` when its commit came back `ok: false`.
 *
 * @example
 * ```ts
 * const count = await retryTransaction("bump", async () => {
 *   const e = await kv.get<number>(["n"]);
 *   const r = await kv.atomic().check(e).set(["n"], (e.value ?? 0) + 1).commit();
 *   return r.ok ? (e.value ?? 0) + 1 : undefined;
 * });
 * ```
 */
export async function retryTransaction<T>(
  what: string,
  attempt: () => Promise<T | undefined>,
): Promise<T> {
  for (let tries = 1; tries <= MAX_TRIES; tries++) {
    try {
      const result = await attempt();
      if (result !== undefined) return result;
    } catch (error) {
      if (!isDatabaseLocked(error)) throw error;
    }
    // A short jittered pause lets the other writer finish; it grows with contention.
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, tries * 2)));
  }
  throw new TransactionConflictError(what, MAX_TRIES);
}

/**
 * Runs a single read or write, retrying only the `database is locked` error.
 *
 * @example
 * ```ts
 * const entry = await withLockRetry(() => kv.get(["reviews", id]));
 * ```
 */
export async function withLockRetry<T>(op: () => Promise<T>): Promise<T> {
  for (let tries = 1;; tries++) {
    try {
      return await op();
    } catch (error) {
      if (!isDatabaseLocked(error) || tries >= MAX_TRIES) throw error;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, tries * 2)));
    }
  }
}
