/**
 * A Deno KV handle that fails or delays commits on command, for fault-injection tests. Everything
 * else passes through to the real handle.
 *
 * @module
 */

/** What to do with a commit. */
export type CommitFault = "throw" | "apply-then-throw" | { delayMs: number };

/** A KV handle with a fault hook. */
export interface FaultyKv {
  kv: Deno.Kv;
  /** Decides per commit; `undefined` commits normally. Gets the keys the commit sets. */
  setFault(decide: ((setKeys: Deno.KvKey[]) => CommitFault | undefined) | undefined): void;
  /** Commits that were failed or delayed. */
  faults: number;
}

/**
 * Wraps `kv` so that `atomic().commit()` can throw (before or after applying) or be delayed.
 *
 * @example
 * ```ts
 * const faulty = faultyKv(await Deno.openKv(":memory:"));
 * faulty.setFault(() => "throw"); // every commit throws now
 * ```
 */
export function faultyKv(kv: Deno.Kv): FaultyKv {
  let decide: ((setKeys: Deno.KvKey[]) => CommitFault | undefined) | undefined;
  const state = { faults: 0 };
  const wrapOp = (op: Deno.AtomicOperation): Deno.AtomicOperation => {
    const setKeys: Deno.KvKey[] = [];
    const proxy: Deno.AtomicOperation = new Proxy(op, {
      get(target, prop) {
        if (prop === "set") {
          return (key: Deno.KvKey, value: unknown, options?: { expireIn?: number }) => {
            setKeys.push(key);
            target.set(key, value, options);
            return proxy;
          };
        }
        if (prop === "commit") {
          return async () => {
            const fault = decide?.(setKeys);
            if (fault === undefined) return await target.commit();
            state.faults++;
            if (fault === "throw") throw new Error("injected commit failure");
            if (fault === "apply-then-throw") {
              await target.commit();
              throw new Error("injected failure after the commit applied");
            }
            await new Promise((r) => setTimeout(r, fault.delayMs));
            return await target.commit();
          };
        }
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          const out = value.apply(target, args);
          return out === target ? proxy : out;
        };
      },
    });
    return proxy;
  };
  const wrapped = new Proxy(kv, {
    get(target, prop) {
      if (prop === "atomic") return () => wrapOp(target.atomic());
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    kv: wrapped,
    setFault(d) {
      decide = d;
    },
    get faults() {
      return state.faults;
    },
  };
}
