/**
 * `GET /metrics`: the Prometheus text exposition, behind a bearer token (owner ids and volumes
 * are not public), and the middleware that counts webhook answers.
 *
 * @module
 */
import { Hono } from "hono";
import type { Metrics } from "../review/metrics.ts";
import { requireBearer } from "./auth.ts";

/**
 * What {@link metricsRoutes} serves.
 *
 * @example
 * ```ts
 * const options: MetricsRouteOptions = { token: () => config.BACKEND_AUTH_TOKEN, metrics };
 * ```
 */
export interface MetricsRouteOptions {
  /** The bearer token scrapers send; unset answers 503 (as the internal API). */
  token: () => string | undefined;
  /** What is rendered (`createMetrics`). */
  metrics: Metrics;
}

/**
 * The metrics route. Prometheus sends the token with `authorization.credentials` (or the older
 * `bearer_token`) in its scrape config.
 *
 * @example
 * ```ts
 * app.route("/", metricsRoutes({ token: () => config.BACKEND_AUTH_TOKEN, metrics }));
 * ```
 */
export function metricsRoutes(options: MetricsRouteOptions): Hono {
  const app = new Hono();
  app.use("/metrics", requireBearer(options.token));
  app.get("/metrics", async (c) => {
    const { contentType, body } = await options.metrics.render();
    // Every scrape reads KV afresh: no proxy may answer one from its cache.
    return c.body(body, 200, { "content-type": contentType, "cache-control": "no-store" });
  });
  return app;
}
