/**
 * Chooses the queue transport: `kv-queue` where the runtime's KV supports queues, `kv-table`
 * where it does not (today's Deno Deploy). Decided by probing, not by guessing from a host name.
 *
 * @module
 */
import { createKvQueueTransport } from "./kv_queue.ts";
import { createKvTableTransport } from "./kv_table.ts";
import type { QueueTransport, TransportName } from "./port.ts";

/** The probe message; the worker recognises and drops it. */
export const PROBE_MESSAGE = { type: "probe" } as const;

/**
 * Whether this KV handle accepts `enqueue` (the probe message is delivered and dropped).
 *
 * @example
 * ```ts
 * const hasQueues = await probeKvQueues(kv);
 * ```
 */
export async function probeKvQueues(kv: Deno.Kv): Promise<boolean> {
  try {
    if (typeof kv.enqueue !== "function" || typeof kv.listenQueue !== "function") return false;
    const result = await kv.enqueue(PROBE_MESSAGE);
    return result.ok;
  } catch {
    return false;
  }
}

/**
 * Builds the configured transport and says why it was chosen.
 *
 * @example
 * ```ts
 * const { transport, why } = await selectTransport(kv, "auto", { pollMs: 1000 });
 * ```
 */
export async function selectTransport(
  kv: Deno.Kv,
  wanted: "auto" | TransportName,
  options: { pollMs: number; clock?: () => number },
): Promise<{ transport: QueueTransport; why: string }> {
  let name: TransportName;
  let why: string;
  if (wanted === "auto") {
    const supported = await probeKvQueues(kv);
    name = supported ? "kv-queue" : "kv-table";
    why = supported
      ? "QUEUE_TRANSPORT=auto and kv.enqueue works on this runtime"
      : "QUEUE_TRANSPORT=auto and this runtime's KV has no queue support (kv.enqueue failed)";
  } else {
    name = wanted;
    why = `QUEUE_TRANSPORT=${wanted}`;
  }
  const transport = name === "kv-queue"
    ? createKvQueueTransport(kv)
    : createKvTableTransport(kv, { pollMs: options.pollMs, clock: options.clock });
  return { transport, why };
}
