/**
 * A KV handle for tests that records what every applied commit wrote, and can play a process
 * that dies just before or just after a chosen commit.
 *
 * @module
 */

/** The value of a delete in a recorded mutation. */
export const DELETED: unique symbol = Symbol("deleted");
/** One set (key, value) or delete (key, {@link DELETED}). */
export type Mutation = [Deno.KvKey, unknown];

/** What a KV handle committed, one list of mutations per applied commit (or plain set/delete). */
export interface Recorder {
  commits: Mutation[][];
  /** Called with each commit's mutations before it is sent: may throw (the process died). */
  before?: (mutations: Mutation[]) => void;
  /**
   * Called after a commit applied, before its caller hears of it (awaited): may throw (the answer
   * is lost: the process died), or act in between.
   */
  after?: (mutations: Mutation[]) => void | Promise<void>;
}

/**
 * A view of `kv` that records every applied commit; once `life.dead`, every call throws (the
 * process died).
 *
 * @example
 * ```ts
 * const rec: Recorder = { commits: [] };
 * const h = await startHarness({ wrapKv: (kv) => recordingKv(kv, rec, { dead: false }) });
 * ```
 */
export function recordingKv(kv: Deno.Kv, rec: Recorder, life: { dead: boolean }): Deno.Kv {
  const died = () => new Error("this process died");
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "close") return value.bind(target);
      if (prop === "atomic") {
        return () => {
          if (life.dead) throw died();
          const op = target.atomic();
          const mutations: Mutation[] = [];
          const proxy: Deno.AtomicOperation = new Proxy(op, {
            get(t, p) {
              const v = Reflect.get(t, p, t);
              if (typeof v !== "function") return v;
              if (p === "commit") {
                return async () => {
                  if (life.dead) throw died();
                  rec.before?.(mutations);
                  const result = await t.commit();
                  if (result.ok) rec.commits.push(mutations);
                  if (result.ok) await rec.after?.(mutations);
                  return result;
                };
              }
              return (...args: unknown[]) => {
                if (p === "set") mutations.push([args[0] as Deno.KvKey, args[1]]);
                if (p === "delete") mutations.push([args[0] as Deno.KvKey, DELETED]);
                const r = v.apply(t, args);
                return r === t ? proxy : r;
              };
            },
          });
          return proxy;
        };
      }
      return (...args: unknown[]) => {
        if (life.dead) throw died();
        if (prop === "set") rec.commits.push([[args[0] as Deno.KvKey, args[1]]]);
        if (prop === "delete") rec.commits.push([[args[0] as Deno.KvKey, DELETED]]);
        return value.apply(target, args);
      };
    },
  });
}
