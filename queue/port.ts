/**
 * The queue port: every enqueue and every delivery goes through a {@link QueueTransport}, so the
 * service runs on KV queues where the runtime has them and on plain KV keys where it does not.
 *
 * @module
 */
import type { Dispatch, EnqueueInto } from "../kv/owner_txn.ts";
import type { QueueMessage } from "./message.ts";

/** Names of the transports. */
export type TransportName = "kv-queue" | "kv-table";

/** A way to deliver queue messages, written into the same atomic commit as the state change. */
export interface QueueTransport {
  readonly name: TransportName;
  /** Adds a message to an atomic operation, delivered after `delayMs`. */
  enqueue(op: Deno.AtomicOperation, message: QueueMessage, delayMs: number): void;
  /** Delivers messages to `handler` until {@link QueueTransport.close}; resolves when stopped. */
  listen(handler: (message: unknown) => Promise<void>): Promise<void>;
  /** Wakes local listeners now (e.g. after a commit that enqueued). */
  wake?(): void;
  /** Stops delivering; `listen` resolves afterwards. */
  close(): Promise<void>;
}

/**
 * Adapts a transport to the KV layer's `EnqueueInto` hook.
 *
 * @example
 * ```ts
 * const enqueue = enqueueVia(transport);
 * ```
 */
export function enqueueVia(transport: QueueTransport): EnqueueInto {
  return (op: Deno.AtomicOperation, dispatch: Dispatch) => {
    transport.enqueue(
      op,
      { type: "run_review", reviewId: dispatch.reviewId, token: dispatch.token },
      dispatch.delayMs,
    );
  };
}
