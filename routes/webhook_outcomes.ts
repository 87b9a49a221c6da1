/**
 * One log line (and one metric count) per webhook answer: accepted, ignored or refused, with why,
 * the event, the delivery id and the review it made; never the body or a secret.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../review/deps.ts";

/** What was answered, for logs and metrics. */
export interface WebhookOutcome {
  status: number;
  event?: string;
  deliveryId?: string;
}

/**
 * Middleware around the webhook route that reports each answer.
 *
 * @example
 * ```ts
 * app.use("/webhooks/*", webhookOutcomes(log, (o) => metrics.webhookAnswered(o.status, o.event)));
 * ```
 */
export function webhookOutcomes(
  log: Logger,
  onAnswer?: (outcome: WebhookOutcome) => void,
): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    const event = c.req.header("x-github-event")?.slice(0, 60);
    const deliveryId = c.req.header("x-github-delivery")?.slice(0, 200);
    onAnswer?.({ status, event, deliveryId });
    // Our answers are small JSON objects written by the route; read a copy for the why.
    let answer: Record<string, unknown> = {};
    try {
      answer = await c.res.clone().json();
    } catch {
      // Not JSON (a framework answer): the status says enough.
    }
    const outcome = status === 202
      ? "accepted"
      : status < 300
      ? (answer.status === "ignored" ? "ignored" : String(answer.status ?? "handled"))
      : "refused";
    log(status >= 500 ? "warn" : status >= 400 ? "warn" : "info", `webhook ${outcome}`, {
      status,
      event,
      deliveryId,
      reviewId: answer.reviewId,
      reason: status >= 400 ? answer.error : answer.reason,
      stopped: answer.stopped,
      ms: Math.round(performance.now() - started),
    });
  };
}
