/**
 * `POST /callbacks/reviews/:id`: where an agent that decides a review's outcome itself (`kilo`)
 * reports it. Authenticated by the per-attempt token the agent was given in `callbackHeaders`
 * (not the bearer token: agents never hold that), bounded, validated, then applied to that
 * attempt only.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { AgentCallbackSchema, applyAgentCallback } from "../review/agent_callback.ts";
import {
  CALLBACK_TOKEN_HEADER,
  callbackSecret,
  verifyCallbackToken,
} from "../review/callback_token.ts";
import type { ReviewDeps } from "../review/deps.ts";
import { readJson } from "./json_body.ts";

const MAX_CALLBACK_BYTES = 256 * 1024;

/**
 * The callback routes.
 *
 * @example
 * ```ts
 * app.route("/", callbackRoutes(deps));
 * ```
 */
export function callbackRoutes(deps: ReviewDeps): Hono {
  const app = new Hono();
  const limit = bodyLimit({
    maxSize: MAX_CALLBACK_BYTES,
    onError: (c) => c.json({ error: "body larger than 256 KiB" }, 413),
  });
  app.post("/callbacks/reviews/:id", limit, async (c) => {
    const secret = callbackSecret(deps.config);
    if (!secret) {
      return c.json({ error: "callbacks are disabled: CALLBACK_SECRET is not set" }, 503);
    }
    const id = c.req.param("id");
    const header = c.req.header(CALLBACK_TOKEN_HEADER);
    const leaseToken = header && id.length <= 200
      ? await verifyCallbackToken(secret, id, header)
      : null;
    if (!leaseToken) {
      deps.log("warn", "agent callback refused: missing or wrong token", { reviewId: id });
      return c.json({ error: `missing or wrong ${CALLBACK_TOKEN_HEADER}` }, 401);
    }
    const json = await readJson(c.req.raw);
    if (!json.ok) return c.json({ error: json.error }, 400);
    const parsed = AgentCallbackSchema.safeParse(json.value);
    if (!parsed.success) return c.json({ error: parsed.error.message }, 400);
    const result = await applyAgentCallback(deps, id, leaseToken, parsed.data);
    return c.json({ ok: true, applied: result === "applied" });
  });
  return app;
}
