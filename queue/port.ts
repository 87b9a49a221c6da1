/**
 * The queue port: every enqueue and every delivery goes through a {@link QueueTransport}, so the
 * service runs on KV queues where the runtime has them and on plain KV keys where it does not.
 *
 * @module
 */
import type { MessageRef } from "../kv/changes.ts";
import type { Dispatch, DropFrom, EnqueueInto } from "../kv/owner_txn.ts";
import type { QueueMessage } from "./message.ts";

/** Names of the transports. */
export type TransportName = "kv-queue" | "kv-table";

/** A way to deliver queue messages, written into the same atomic commit as the state change. */
export interface QueueTransport {
  readonly name: TransportName;
  /**
   * Adds a message to an atomic operation, delivered after `delayMs`. Returns where the message
   * is kept when {@link QueueTransport.drop} can remove it, else `undefined`.
   */
  enqueue(op: Deno.AtomicOperation, message: QueueMessage, delayMs: number): MessageRef | undefined;
  /**
   * Removes a message sent earlier, in the same atomic operation as the state change that makes
   * it unneeded. A no-op where the transport cannot remove a sent message (`kv-queue`) or where a
   * listener has taken it meanwhile (its handler then finds nothing to do).
   */
  drop(op: Deno.AtomicOperation, ref: MessageRef): void;
  /**
   * Tells this instance's listener that the message `ref` names is being started in this process
   * (the fast path, which drops it in its start commit): the listener leaves it alone until the
   * returned function is called, instead of racing the start for it with a claim. Transports
   * whose messages cannot be dropped (`kv-queue`) leave this out.
   */
  holdHere?(ref: MessageRef): () => void;
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
  return (op: Deno.AtomicOperation, dispatch: Dispatch) =>
    transport.enqueue(
      op,
      { type: "run_review", reviewId: dispatch.reviewId, token: dispatch.token },
      dispatch.delayMs,
    );
}

/**
 * Adapts a transport to the KV layer's `DropFrom` hook.
 *
 * @example
 * ```ts
 * const drop = dropVia(transport);
 * ```
 */
export function dropVia(transport: QueueTransport): DropFrom {
  return (op: Deno.AtomicOperation, ref: MessageRef) => transport.drop(op, ref);
}
