/**
 * `POST /webhooks/github`: verify the signature on the raw body, then parse, classify, store.
 *
 * @module
 */
import { Hono } from "hono";
import type { ReviewDeps } from "../review/deps.ts";
import { closePullRequest, reviewsDrafts, runCommand, submitReview } from "../review/service.ts";
import { classifyEvent } from "../review/webhook_events.ts";
import type { Context } from "hono";
import { classifyWebhook, reviewFromPayload } from "../review/webhook_payload.ts";
import { createBodyBudget, readBody, releaseBody } from "./body_budget.ts";
import { SIGNATURE_PATTERN, verifySignature } from "./signature.ts";
import { answer, type WebhookEnv } from "./webhook_outcomes.ts";

/** GitHub caps webhook payloads at 25 MiB. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

/**
 * Bytes all webhook bodies being read at once may hold. GitHub's `pull_request` payloads are tens
 * of kilobytes, so only a flood of large (likely forged) bodies ever meets it.
 */
export const WEBHOOK_BODY_BUDGET_BYTES = 64 * 1024 * 1024;

/**
 * The webhook route.
 *
 * @example
 * ```ts
 * app.route("/", webhookRoutes(deps));
 * ```
 */
export function webhookRoutes(deps: ReviewDeps): Hono<WebhookEnv> {
  const app = new Hono<WebhookEnv>();
  const budget = createBodyBudget(WEBHOOK_BODY_BUDGET_BYTES);
  app.post("/webhooks/github", async (c) => {
    const secret = deps.config.GITHUB_WEBHOOK_SECRET;
    if (!secret) {
      return answer(c, { error: "webhooks are disabled: GITHUB_WEBHOOK_SECRET is not set" }, 503);
    }
    // Refused before the body is read: a request without a signature costs nothing.
    const signature = c.req.header("x-hub-signature-256");
    if (!signature || !SIGNATURE_PATTERN.test(signature)) {
      return answer(c, { error: "missing or invalid X-Hub-Signature-256" }, 401);
    }
    const read = await readBody(c.req.raw, MAX_WEBHOOK_BYTES, budget);
    if (!read.ok) {
      return read.status === 413
        ? answer(c, { error: "payload larger than 25 MiB" }, 413)
        : answer(c, { error: "too many large deliveries at once; redeliver shortly" }, 503, {
          "retry-after": "5",
        });
    }
    let body: unknown;
    try {
      if (!(await verifySignature(secret, read.bytes, signature))) {
        return answer(c, { error: "missing or invalid X-Hub-Signature-256" }, 401);
      }
      try {
        body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(read.bytes));
      } catch {
        return answer(c, { error: "body is not valid UTF-8 JSON" }, 400);
      }
    } finally {
      // The budget bounds bodies being read and verified, not the reviews made of them.
      releaseBody(budget, read);
    }
    const event = c.req.header("x-github-event") ?? "";
    const deliveryId = c.req.header("x-github-delivery")?.slice(0, 200) || undefined;
    if (APP_EVENTS.includes(event)) return await appEvent(c, deps, event, body, deliveryId);
    let decision = classifyWebhook(event, body);
    if (
      decision.kind === "ignore" && decision.draft &&
      await reviewsDrafts(deps, decision.draft.repository.full_name)
    ) decision = { kind: "review", payload: decision.draft };
    if (decision.kind === "ignore") {
      return answer(c, { status: "ignored", reason: decision.reason });
    }
    if (decision.kind === "invalid") return answer(c, { error: decision.message }, 400);
    if (decision.kind === "close") {
      // A redelivered or late close stops nothing newer than itself (ordered by `updated_at`).
      const { repo, pullNumber, closedAt } = decision;
      const stopped = await closePullRequest(deps, repo, pullNumber, closedAt);
      return answer(c, { status: "closed", stopped });
    }
    const record = reviewFromPayload(decision.payload, {
      id: crypto.randomUUID(),
      deliveryId,
      now: deps.clock(),
    });
    const action = decision.payload.action;
    const { review } = await submitReview(deps, record, {
      supersede: "newer",
      // A reopened pull request, or a push back to a head reviewed before, is reviewed again
      // (the comment must show the head the pull request is at now).
      again: action === "reopened" || action === "synchronize",
    });
    return answer(c, { reviewId: review.id, status: review.status }, 202);
  });
  return app;
}

/** Events of a GitHub App besides `pull_request`. */
const APP_EVENTS = ["issue_comment", "installation", "installation_repositories"];

/** `/review` commands and installation changes: answered at once, like `pull_request`. */
async function appEvent(
  c: Context<WebhookEnv>,
  deps: ReviewDeps,
  event: string,
  body: unknown,
  deliveryId: string | undefined,
) {
  const decision = classifyEvent(event, body);
  if (decision.kind === "ignore") return answer(c, { status: "ignored", reason: decision.reason });
  if (decision.kind === "invalid") return answer(c, { error: decision.message }, 400);
  if (decision.kind === "installation") {
    if (decision.drop) await deps.github.forget(decision.installationId, decision.login);
    return answer(c, { status: decision.drop ? "forgotten" : "noted" });
  }
  const done = await runCommand(deps, decision, deliveryId);
  if (done.command === "cancel") return answer(c, { status: "cancelled", stopped: done.stopped });
  return answer(c, { reviewId: done.review.id, status: done.review.status }, 202);
}
