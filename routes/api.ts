/**
 * The internal API (bearer `BACKEND_AUTH_TOKEN`): create, read, list, cancel and retry reviews.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { ReviewStatusSchema } from "../kv/records.ts";
import {
  CreateReviewBodySchema,
  recordTooLarge,
  reviewFromApiBody,
} from "../review/api_request.ts";
import type { ReviewDeps } from "../review/deps.ts";
import {
  cancel,
  listPublicReviews,
  readReview,
  readReviewEvents,
  submitReview,
} from "../review/service.ts";
import { retry } from "../review/operations.ts";
import { requireBearer } from "./auth.ts";
import { ownerFilterOf, OwnerFilterText, RepoText } from "./filters.ts";
import { readJson } from "./json_body.ts";

const MAX_API_BODY_BYTES = 1024 * 1024;

const ListQuerySchema = z.object({
  owner: OwnerFilterText.optional(),
  status: ReviewStatusSchema.optional(),
  repo: RepoText.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(1000).optional(),
});

/** zod's issues as one readable line: `status: Invalid option …; limit: Too big …`. */
function issuesText(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
}

const CancelBodySchema = z.object({ reason: z.string().max(1000).optional() });

/**
 * The internal API routes.
 *
 * @example
 * ```ts
 * app.route("/", apiRoutes(deps));
 * ```
 */
export function apiRoutes(deps: ReviewDeps): Hono {
  const app = new Hono();
  const auth = requireBearer(() => deps.config.BACKEND_AUTH_TOKEN);
  const limit = bodyLimit({
    maxSize: MAX_API_BODY_BYTES,
    onError: (c) => c.json({ error: "body larger than 1 MiB" }, 413),
  });
  for (const path of ["/review", "/reviews", "/reviews/*"]) app.use(path, auth);

  app.post("/review", limit, async (c) => {
    const json = await readJson(c.req.raw);
    if (!json.ok) return c.json({ error: json.error }, 400);
    const parsed = CreateReviewBodySchema.safeParse(json.value);
    if (!parsed.success) return c.json({ error: parsed.error.message }, 400);
    const record = reviewFromApiBody(parsed.data, deps.clock());
    const tooLarge = recordTooLarge(record);
    if (tooLarge) return c.json({ error: tooLarge }, 400);
    const { review } = await submitReview(deps, record, { supersede: "none" });
    return c.json({ reviewId: review.id, status: review.status }, 202);
  });

  app.get("/reviews/:id", async (c) => {
    const review = await readReview(deps, c.req.param("id"));
    return review ? c.json(review) : c.json({ error: "review not found" }, 404);
  });

  app.get("/reviews/:id/events", async (c) => {
    const events = await readReviewEvents(deps, c.req.param("id"));
    return events ? c.json(events) : c.json({ error: "review not found" }, 404);
  });

  app.get("/reviews", async (c) => {
    const parsed = ListQuerySchema.safeParse(c.req.query());
    if (!parsed.success) return c.json({ error: issuesText(parsed.error) }, 400);
    const { owner, status, repo, limit, cursor } = parsed.data;
    const ownerRef = ownerFilterOf(owner);
    try {
      return c.json(
        await listPublicReviews(deps, { owner: ownerRef, status, repo, limit, cursor }),
      );
    } catch (error) {
      // A cursor from another listing (or a mangled one) is the caller's mistake, not ours.
      if (cursor && error instanceof Error && /cursor/i.test(error.message)) {
        return c.json({ error: "invalid cursor: pass back the cursor of the same listing" }, 400);
      }
      throw error;
    }
  });

  app.post("/reviews/:id/cancel", limit, async (c) => {
    const json = await readJson(c.req.raw);
    if (!json.ok) return c.json({ error: json.error }, 400);
    const parsed = CancelBodySchema.safeParse(json.value);
    if (!parsed.success) return c.json({ error: issuesText(parsed.error) }, 400);
    const outcome = await cancel(deps, c.req.param("id"), parsed.data.reason ?? "cancelled by API");
    if (outcome.kind === "not_found") return c.json({ error: "review not found" }, 404);
    if (outcome.kind === "finished") {
      return c.json(
        { error: `review already ${outcome.review.status}`, review: outcome.review },
        409,
      );
    }
    // Still running: its attempt was asked to stop and ends it within about a second.
    if (outcome.kind === "stopping") return c.json(outcome.review, 202);
    return c.json(outcome.review);
  });

  app.post("/reviews/:id/retry", async (c) => {
    const outcome = await retry(deps, c.req.param("id"));
    if (outcome.kind === "not_found") return c.json({ error: "review not found" }, 404);
    if (outcome.kind === "not_retryable") {
      return c.json({ error: outcome.why, review: outcome.review }, 409);
    }
    // An existing retry (a second click, another instance) is the answer, not a new review.
    return c.json(outcome.review, outcome.kind === "created" ? 202 : 200);
  });
  return app;
}
