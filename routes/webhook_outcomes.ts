/**
 * One log line (and one metric count) per webhook answer: accepted, ignored or refused, with why,
 * the event, the delivery id and the review it made; never the body or a secret.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "../review/deps.ts";

/** What was answered, for logs and metrics. */
export interface WebhookOutcome {
  status: number;
  event?: string;
  deliveryId?: string;
}

/** What the webhook route keeps on its context for {@link webhookOutcomes}. */
export type WebhookEnv = { Variables: { answer?: Record<string, unknown> } };

/**
 * Answers a webhook with JSON and keeps the answer for the outcome log line (reading the
 * response back would clone its stream on every delivery).
 *
 * @example
 * ```ts
 * return answer(c, { status: "ignored", reason: "not a pull request" });
 * ```
 */
export function answer(
  c: Context<WebhookEnv>,
  body: Record<string, unknown>,
  status: 200 | 202 | 400 | 401 | 413 | 503 = 200,
  headers?: Record<string, string>,
): Response {
  c.set("answer", body);
  return c.json(body, status, headers);
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
): MiddlewareHandler<WebhookEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    const event = c.req.header("x-github-event")?.slice(0, 60);
    const deliveryId = c.req.header("x-github-delivery")?.slice(0, 200);
    onAnswer?.({ status, event, deliveryId });
    // What the route answered ({@link answer}); a framework answer has none: the status says enough.
    const answer = c.get("answer") ?? {};
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
