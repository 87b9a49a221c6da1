/**
 * The HTTP application: webhook, internal API, agent callbacks, health and the dashboard, with
 * JSON errors everywhere but the dashboard's pages.
 *
 * @module
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { pingKv } from "../kv/queries.ts";
import { serviceStats } from "../review/operations.ts";
import { withDeadline } from "../review/deadline.ts";
import type { ReviewDeps } from "../review/deps.ts";
import type { LiveFeed } from "../review/live_feed.ts";
import type { Metrics } from "../review/metrics.ts";
import { metricsRoutes } from "./metrics.ts";
import { dashboardRoutes } from "./dashboard/routes.tsx";
import { apiRoutes } from "./api.ts";
import { callbackRoutes } from "./callbacks.ts";
import { ownerRoutes } from "./owners.ts";
import { webhookRoutes } from "./webhooks.ts";
import { type WebhookOutcome, webhookOutcomes } from "./webhook_outcomes.ts";

/** How long the health probe waits for KV. */
const HEALTH_KV_WAIT_MS = 5_000;

/**
 * Builds the app from its dependencies.
 *
 * @example
 * ```ts
 * const app = createApp(deps, { feed, metrics });
 * Deno.serve({ port: 8000 }, app.fetch);
 * ```
 */
export function createApp(
  deps: ReviewDeps,
  parts: {
    feed: LiveFeed;
    metrics: Metrics;
    onWebhookAnswer?: (outcome: WebhookOutcome) => void;
  },
): Hono {
  const app = new Hono();
  app.get("/health", async (c) => {
    try {
      // A KV that hangs fails the probe as surely as one that throws.
      const stats = await withDeadline(HEALTH_KV_WAIT_MS, async () => {
        await pingKv(deps.kv);
        return await serviceStats(deps);
      });
      return c.json({
        ok: true,
        queueLagMs: stats.queueLagMs,
        pending: stats.pending,
        active: stats.active,
      });
    } catch (error) {
      deps.log("error", "health check failed", { error: String(error) });
      return c.json({ ok: false, error: "KV is not answering" }, 503);
    }
  });
  app.use("/webhooks/*", webhookOutcomes(deps.log, parts.onWebhookAnswer));
  app.route("/", webhookRoutes(deps));
  app.route("/", apiRoutes(deps));
  app.route("/", ownerRoutes(deps));
  app.route("/", callbackRoutes(deps));
  app.route(
    "/",
    metricsRoutes({ token: () => deps.config.BACKEND_AUTH_TOKEN, metrics: parts.metrics }),
  );
  app.route("/", dashboardRoutes(deps, parts.feed));
  app.notFound((c) => c.json({ error: "not found" }, 404));
  app.onError((error, c) => {
    // Middleware refusals (a cross-site form post, say) carry their own answer.
    if (error instanceof HTTPException) return error.getResponse();
    deps.log("error", "request failed", {
      method: c.req.method,
      path: c.req.path,
      error: error instanceof Error ? error.stack : String(error),
    });
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
