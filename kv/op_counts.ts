/**
 * Counting the KV operations a service makes: every atomic commit (and `set`/`delete`, which are
 * one-mutation commits) and every read. Counted here, in `kv/`, by wrapping the handle the service
 * runs on, so no call site can forget; `/metrics` exposes the totals and the benchmark divides
 * them by the reviews completed.
 *
 * @module
 */

/** Running totals of one service's KV operations. */
export interface KvOpCounts {
  /** Atomic commits attempted, `set` and `delete` included. */
  commits: number;
  /** Commits that came back `ok: false` (a checked entry changed; the caller retries). */
  conflicts: number;
  /** `get`, `getMany` and `list` calls (a `list` counts once however many pages it reads). */
  reads: number;
}

/**
 * Fresh zero counts.
 *
 * @example
 * ```ts
 * const counts = emptyKvOpCounts(); // { commits: 0, conflicts: 0, reads: 0 }
 * ```
 */
export function emptyKvOpCounts(): KvOpCounts {
  return { commits: 0, conflicts: 0, reads: 0 };
}

const READS = new Set<PropertyKey>(["get", "getMany", "list"]);
const SINGLE_WRITES = new Set<PropertyKey>(["set", "delete"]);

/**
 * A view of `kv` that adds every commit and read to `counts`; everything else passes through.
 *
 * @example
 * ```ts
 * const counts = emptyKvOpCounts();
 * const counted = countingKv(await Deno.openKv(":memory:"), counts);
 * await counted.set(["a"], 1); // counts.commits === 1
 * ```
 */
export function countingKv(kv: Deno.Kv, counts: KvOpCounts): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "atomic") return () => countingAtomic(target.atomic(), counts);
      if (READS.has(prop)) {
        return (...args: unknown[]) => {
          counts.reads++;
          return value.apply(target, args);
        };
      }
      if (SINGLE_WRITES.has(prop)) {
        return (...args: unknown[]) => {
          counts.commits++;
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
}

function countingAtomic(op: Deno.AtomicOperation, counts: KvOpCounts): Deno.AtomicOperation {
  const proxy: Deno.AtomicOperation = new Proxy(op, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "commit") {
        return async () => {
          counts.commits++;
          const result = await target.commit();
          if (!result.ok) counts.conflicts++;
          return result;
        };
      }
      // Builder methods return the operation itself: keep returning the counting view.
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        return result === target ? proxy : result;
      };
    },
  });
  return proxy;
}
