/**
 * Transport `kv-table`: messages are plain KV entries indexed by due time (see
 * `kv/queue_table.ts`), written in the same commit as the state change. Any instance claims due
 * messages with an atomic check and a lease. A live instance wakes on `kv.watch` of a wake key or
 * on a timer for the next due time (bounded by `pollMs`, the cross-process wake-up locally).
 *
 * @module
 */
import {
  claimDueMessages,
  deleteTableMessage,
  dropTableMessage,
  nextDueAt,
  putTableMessage,
  releaseTableMessage,
  watchWake,
} from "../kv/queue_table.ts";
import type { QueueMessage } from "./message.ts";
import type { QueueTransport } from "./port.ts";

/** Options of the `kv-table` transport. */
export interface KvTableOptions {
  clock?: () => number;
  /** Longest sleep between looks at the table when nothing wakes this instance. */
  pollMs: number;
  /** How long a claimed message stays invisible to other instances. */
  visibilityMs?: number;
  log?: (message: string, context: Record<string, unknown>) => void;
}

const BATCH = 64;
const RELEASE_DELAY_MS = 1_000;

/**
 * Creates the `kv-table` transport.
 *
 * @example
 * ```ts
 * const transport = createKvTableTransport(kv, { pollMs: 1000 });
 * const stopped = transport.listen(async (msg) => console.log(msg));
 * await transport.close(); await stopped;
 * ```
 */
export function createKvTableTransport(kv: Deno.Kv, options: KvTableOptions): QueueTransport {
  const clock = options.clock ?? Date.now;
  const visibilityMs = options.visibilityMs ?? 30_000;
  const log = options.log ?? ((m, c) => console.error(m, c));
  let closed = false;
  let wakeUp: () => void = () => {};
  let watcher: ReadableStreamDefaultReader<unknown> | undefined;
  /** Ids of messages this process is starting itself (and drops in the start commit). */
  const held = new Set<string>();
  const isHeld = (id: string) => held.has(id);

  async function drain(handler: (message: unknown) => Promise<void>) {
    while (!closed) {
      const claimed = await claimDueMessages(kv, clock(), visibilityMs, BATCH, isHeld);
      await Promise.all(claimed.map(async (entry) => {
        try {
          await handler(entry.message);
          await deleteTableMessage(kv, entry.key);
        } catch (error) {
          // Due again shortly, for this or another instance; if even this fails, the visibility
          // lease ends and the message is due again anyway.
          log("kv-table handler failed; message will be retried", { error: String(error) });
          await releaseTableMessage(kv, entry, clock() + RELEASE_DELAY_MS).catch(() => {});
        }
      }));
      if (claimed.length < BATCH) return;
    }
  }

  async function sleepUntilWoken() {
    // A held message is not this listener's to take: its due time must not spin the loop.
    const next = await nextDueAt(kv, isHeld, held.size);
    const wait = next === null
      ? options.pollMs
      : Math.min(options.pollMs, Math.max(0, next - clock()));
    if (wait === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait);
      function done() {
        clearTimeout(timer);
        wakeUp = () => {};
        resolve();
      }
      wakeUp = done;
    });
  }

  async function watchForWakes() {
    watcher = watchWake(kv).getReader();
    try {
      while (!closed) {
        const { done } = await watcher.read();
        if (done) return;
        wakeUp();
      }
    } catch (error) {
      if (!closed) log("kv-table watch ended", { error: String(error) });
    }
  }

  return {
    name: "kv-table",
    enqueue(op: Deno.AtomicOperation, message: QueueMessage, delayMs: number) {
      return putTableMessage(op, message, clock() + Math.max(0, delayMs));
    },
    drop(op: Deno.AtomicOperation, ref: Deno.KvKey) {
      dropTableMessage(op, ref);
    },
    holdHere(ref: Deno.KvKey) {
      // A start that did not drop the message (a no-op, a failure) leaves it to the next look:
      // at the latest after pollMs, or at the next wake.
      const id = String(ref[2]);
      held.add(id);
      return () => held.delete(id);
    },
    async listen(handler) {
      const watching = watchForWakes();
      try {
        while (!closed) {
          try {
            await drain(handler);
            if (!closed) await sleepUntilWoken();
          } catch (error) {
            if (closed) break;
            // A KV hiccup must not stop delivery: log it and look again after a pause.
            log("kv-table listener error", { error: String(error) });
            await new Promise((r) => setTimeout(r, options.pollMs));
          }
        }
      } finally {
        closed = true;
        await watcher?.cancel().catch(() => {});
        await watching;
      }
    },
    wake() {
      wakeUp();
    },
    close() {
      closed = true;
      wakeUp();
      return watcher?.cancel().catch(() => {}) ?? Promise.resolve();
    },
  };
}
