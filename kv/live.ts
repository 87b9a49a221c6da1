/**
 * The change mark: one small key every instance bumps (at most a few times a second) after state
 * changes, so a live dashboard served by another instance hears of them through `kv.watch`
 * instead of polling.
 *
 * @module
 */
import { withLockRetry } from "./commit.ts";
import { keys } from "./keys.ts";

/** The value of `["live_change"]`. */
export interface ChangeMark {
  /** The instance whose changes the mark announces. */
  instance: string;
  at: number;
}

/**
 * Bumps the change mark (a blind write: nothing checks it, so it never conflicts).
 *
 * @example
 * ```ts
 * await touchChangeMark(kv, "instance-1", Date.now());
 * ```
 */
export async function touchChangeMark(kv: Deno.Kv, instance: string, at: number): Promise<void> {
  await withLockRetry(() => kv.set(keys.liveChange(), { instance, at } satisfies ChangeMark));
}

/**
 * Watches the change mark: a stream of its values (the first is the current one).
 *
 * @example
 * ```ts
 * for await (const mark of watchChangeMark(kv)) console.log(mark?.instance);
 * ```
 */
export function watchChangeMark(kv: Deno.Kv): ReadableStream<ChangeMark | null> {
  return kv.watch<[ChangeMark]>([keys.liveChange()]).pipeThrough(
    new TransformStream({ transform: ([entry], out) => out.enqueue(entry.value) }),
  );
}
