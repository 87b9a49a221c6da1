/**
 * The queue message: "start an attempt of this review". It carries the review's dispatch token so
 * a stale or repeated message is recognised by KV state and dropped.
 *
 * @module
 */
import { z } from "zod";

/** Schema of every message the service puts on its queue. */
export const QueueMessageSchema = z.object({
  type: z.literal("run_review"),
  reviewId: z.string().min(1),
  token: z.string().min(1),
});
/** A queue message. */
export type QueueMessage = z.infer<typeof QueueMessageSchema>;
