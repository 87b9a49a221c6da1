/**
 * `POST /webhooks/github`: verify the signature on the raw body, then parse, classify, store.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ReviewDeps } from "../review/deps.ts";
import { submitReview } from "../review/service.ts";
import { classifyWebhook, reviewFromPayload } from "../review/webhook_payload.ts";
import { SIGNATURE_PATTERN, verifySignature } from "./signature.ts";

/** GitHub caps webhook payloads at 25 MiB. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

/**
 * The webhook route.
 *
 * @example
 * ```ts
 * app.route("/", webhookRoutes(deps));
 * ```
 */
export function webhookRoutes(deps: ReviewDeps): Hono {
  const app = new Hono();
  app.post(
    "/webhooks/github",
    // Refused before the body is read (bodyLimit reads a chunked body whole): an unsigned
    // request costs nothing however large.
    async (c, next) => {
      if (!deps.config.GITHUB_WEBHOOK_SECRET) {
        return c.json({ error: "webhooks are disabled: GITHUB_WEBHOOK_SECRET is not set" }, 503);
      }
      const signature = c.req.header("x-hub-signature-256");
      if (!signature || !SIGNATURE_PATTERN.test(signature)) {
        return c.json({ error: "missing or invalid X-Hub-Signature-256" }, 401);
      }
      await next();
    },
    bodyLimit({
      maxSize: MAX_WEBHOOK_BYTES,
      onError: (c) => c.json({ error: "payload larger than 25 MiB" }, 413),
    }),
    async (c) => {
      const secret = deps.config.GITHUB_WEBHOOK_SECRET!;
      const signature = c.req.header("x-hub-signature-256")!;
      const raw = new Uint8Array(await c.req.arrayBuffer());
      if (!(await verifySignature(secret, raw, signature))) {
        return c.json({ error: "missing or invalid X-Hub-Signature-256" }, 401);
      }
      let body: unknown;
      try {
        body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
      } catch {
        return c.json({ error: "body is not valid UTF-8 JSON" }, 400);
      }
      const event = c.req.header("x-github-event") ?? "";
      const decision = classifyWebhook(event, body);
      if (decision.kind === "ignore") return c.json({ status: "ignored", reason: decision.reason });
      if (decision.kind === "invalid") return c.json({ error: decision.message }, 400);
      const deliveryId = c.req.header("x-github-delivery")?.slice(0, 200) || undefined;
      const record = reviewFromPayload(decision.payload, {
        id: crypto.randomUUID(),
        deliveryId,
        now: deps.clock(),
      });
      const { review } = await submitReview(deps, record, {
        supersede: "newer",
        again: decision.payload.action === "reopened",
      });
      return c.json({ reviewId: review.id, status: review.status }, 202);
    },
  );
  return app;
}
