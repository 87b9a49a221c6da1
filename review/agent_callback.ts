/**
 * The outcome an agent that decides it itself (`kilo`) reports to `POST /callbacks/reviews/:id`:
 * applied only for the attempt whose token it carries, in one commit fenced by that attempt's
 * lease. A late callback from an older attempt, or one for a review that already ended, changes
 * nothing.
 *
 * @module
 */
import { z } from "zod";
import { finishAttempt } from "../kv/attempts.ts";
import { truncateForKv } from "../kv/size.ts";
import type { Outcome } from "../kv/transitions.ts";
import { type ReviewDeps, txnContext } from "./deps.ts";
import { MAX_ERROR_BYTES } from "./errors.ts";

/** The callback body of the original cloud agent. */
export const AgentCallbackSchema = z.object({
  status: z.enum(["completed", "failed", "interrupted"]),
  sessionId: z.string().max(200).optional(),
  errorMessage: z.string().max(100_000).optional(),
});
/** A callback body. */
export type AgentCallback = z.infer<typeof AgentCallbackSchema>;

/**
 * How a callback ends the review.
 *
 * @example
 * ```ts
 * callbackOutcome({ status: "interrupted" }).status; // "cancelled"
 * ```
 */
export function callbackOutcome(callback: AgentCallback): Outcome {
  const sessionPatch = callback.sessionId ? { patch: { sessionId: callback.sessionId } } : {};
  const message = callback.errorMessage && truncateForKv(callback.errorMessage, MAX_ERROR_BYTES);
  switch (callback.status) {
    case "completed":
      return { status: "completed", terminalReason: "completed", ...sessionPatch };
    case "failed":
      return {
        status: "failed",
        terminalReason: "agent_error",
        errorMessage: message || "the agent reported a failure",
        ...sessionPatch,
      };
    case "interrupted":
      return {
        status: "cancelled",
        terminalReason: "cancelled",
        errorMessage: message || "the agent session was interrupted",
        ...sessionPatch,
      };
  }
}

/**
 * Applies a verified callback to the attempt holding `leaseToken`: `applied` when it ended the
 * review, `stale` when that attempt no longer holds it.
 *
 * @example
 * ```ts
 * await applyAgentCallback(deps, "r1", leaseToken, { status: "completed", sessionId: "agent_1" });
 * ```
 */
export async function applyAgentCallback(
  deps: ReviewDeps,
  reviewId: string,
  leaseToken: string,
  callback: AgentCallback,
): Promise<"applied" | "stale"> {
  const t = await finishAttempt(txnContext(deps), reviewId, leaseToken, callbackOutcome(callback));
  if (!t) {
    deps.log("info", "agent callback for an attempt that has ended: ignored", {
      reviewId,
      status: callback.status,
    });
    return "stale";
  }
  deps.apply(t.changes);
  return "applied";
}
