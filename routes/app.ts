/**
 * The HTTP application: webhook, internal API, agent callbacks and health, with JSON errors
 * everywhere.
 *
 * @module
 */
import { Hono } from "hono";
import { pingKv } from "../kv/queries.ts";
import type { ReviewDeps } from "../review/deps.ts";
import { apiRoutes } from "./api.ts";
import { callbackRoutes } from "./callbacks.ts";
import { ownerRoutes } from "./owners.ts";
import { webhookRoutes } from "./webhooks.ts";

/**
 * Builds the app from its dependencies.
 *
 * @example
 * ```ts
 * const app = createApp(deps);
 * Deno.serve({ port: 8000 }, app.fetch);
 * ```
 */
export function createApp(deps: ReviewDeps): Hono {
  const app = new Hono();
  app.get("/health", async (c) => {
    try {
      await pingKv(deps.kv);
      return c.json({ ok: true });
    } catch (error) {
      deps.log("error", "health check failed", { error: String(error) });
      return c.json({ ok: false, error: "KV is not answering" }, 503);
    }
  });
  app.route("/", webhookRoutes(deps));
  app.route("/", apiRoutes(deps));
  app.route("/", ownerRoutes(deps));
  app.route("/", callbackRoutes(deps));
  app.notFound((c) => c.json({ error: "not found" }, 404));
  app.onError((error, c) => {
    deps.log("error", "request failed", {
      method: c.req.method,
      path: c.req.path,
      error: error instanceof Error ? error.stack : String(error),
    });
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
