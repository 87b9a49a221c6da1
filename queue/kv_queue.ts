/**
 * Transport `kv-queue`: Deno KV's own queue (`atomic.enqueue` + `kv.listenQueue`). Works locally
 * and self-hosted; today's Deno Deploy does not support it.
 *
 * @module
 */
import type { QueueMessage } from "./message.ts";
import type { QueueTransport } from "./port.ts";

/**
 * Creates the `kv-queue` transport. `listen` may be called once per KV handle; it resolves when
 * the KV handle is closed.
 *
 * @example
 * ```ts
 * const transport = createKvQueueTransport(kv);
 * const done = transport.listen(async (msg) => console.log(msg));
 * ```
 */
export function createKvQueueTransport(kv: Deno.Kv): QueueTransport {
  let closed = false;
  return {
    name: "kv-queue",
    enqueue(op: Deno.AtomicOperation, message: QueueMessage, delayMs: number) {
      op.enqueue(message, { delay: Math.max(0, Math.round(delayMs)) });
      // An enqueued KV queue message cannot be taken back: it stays, and is a no-op when handled.
      return undefined;
    },
    drop() {},
    async listen(handler) {
      if (closed) return;
      await kv.listenQueue(handler);
    },
    close() {
      // The listener ends when the KV handle closes; the owner of the handle closes it.
      closed = true;
      return Promise.resolve();
    },
  };
}
