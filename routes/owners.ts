/**
 * Owners and totals in the internal API (bearer `BACKEND_AUTH_TOKEN`): the overview, one owner's
 * slots, its own limit, and `GET /stats`.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { MAX_OWNER_LIMIT } from "../kv/records.ts";
import type { ReviewDeps } from "../review/deps.ts";
import { changeOwnerLimit, ownersOverview, serviceStats } from "../review/operations.ts";
import { ownerUsage } from "../review/service.ts";
import { requireBearer } from "./auth.ts";
import { readJson } from "./json_body.ts";

/** An owner in a path: `/owners/org/123`. */
export const OwnerParamsSchema = z.object({
  type: z.enum(["org", "user"]),
  id: z.string().regex(/^[\w.-]{1,64}$/, "owner id must be 1 to 64 letters, digits, . _ or -"),
});

/** `PUT /owners/:type/:id/limit`: a number, or `null` for the default. */
export const LimitBodySchema = z.object({
  limit: z.number().int().min(0).max(MAX_OWNER_LIMIT).nullable(),
}).strict();

/**
 * The owner and stats routes.
 *
 * @example
 * ```ts
 * app.route("/", ownerRoutes(deps));
 * ```
 */
export function ownerRoutes(deps: ReviewDeps): Hono {
  const app = new Hono();
  const auth = requireBearer(() => deps.config.BACKEND_AUTH_TOKEN);
  for (const path of ["/owners", "/owners/*", "/stats"]) app.use(path, auth);
  const small = bodyLimit({
    maxSize: 4096,
    onError: (c) => c.json({ error: "body larger than 4 KiB" }, 413),
  });

  app.get("/owners", async (c) => c.json({ owners: await ownersOverview(deps) }));

  app.get("/stats", async (c) => c.json(await serviceStats(deps)));

  app.get("/owners/:type/:id", async (c) => {
    const parsed = OwnerParamsSchema.safeParse(c.req.param());
    if (!parsed.success) return c.json({ error: parsed.error.issues[0].message }, 400);
    return c.json(await ownerUsage(deps, parsed.data));
  });

  app.put("/owners/:type/:id/limit", small, async (c) => {
    const owner = OwnerParamsSchema.safeParse(c.req.param());
    if (!owner.success) return c.json({ error: owner.error.issues[0].message }, 400);
    const json = await readJson(c.req.raw);
    if (!json.ok) return c.json({ error: json.error }, 400);
    const body = LimitBodySchema.safeParse(json.value);
    if (!body.success) {
      return c.json({
        error: `limit must be an integer from 0 to ${MAX_OWNER_LIMIT}, or null for the default`,
      }, 400);
    }
    return c.json(await changeOwnerLimit(deps, owner.data, body.data.limit));
  });

  app.delete("/owners/:type/:id/limit", async (c) => {
    const owner = OwnerParamsSchema.safeParse(c.req.param());
    if (!owner.success) return c.json({ error: owner.error.issues[0].message }, 400);
    return c.json(await changeOwnerLimit(deps, owner.data, null));
  });
  return app;
}
