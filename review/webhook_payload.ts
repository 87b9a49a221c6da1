/**
 * GitHub `pull_request` webhook payloads: which ones start a review, and the review they become.
 *
 * @module
 */
import { z } from "zod";
import { newReview, type Owner, type ReviewRecord } from "../kv/records.ts";
import { truncateForKv } from "../kv/size.ts";

/** A stored title's bound, as KV measures it (GitHub's own titles are at most 256 characters). */
export const MAX_TITLE_BYTES = 1_024;

/** Actions that start a review. */
export const TRIGGER_ACTIONS = ["opened", "synchronize", "reopened", "ready_for_review"] as const;

/** The part of a `pull_request` payload a review needs. */
export const PullRequestPayloadSchema = z.object({
  action: z.string(),
  number: z.number().int().positive().max(2 ** 31),
  pull_request: z.object({
    number: z.number().int().positive().max(2 ** 31),
    state: z.string(),
    draft: z.boolean().optional().default(false),
    title: z.string().transform((t) => truncateForKv(t, MAX_TITLE_BYTES)),
    updated_at: z.string().max(64).optional(),
    head: z.object({ sha: z.string().regex(/^[0-9a-f]{7,64}$/i) }),
    base: z.object({ sha: z.string().regex(/^[0-9a-f]{7,64}$/i) }),
  }),
  repository: z.object({
    // GitHub: logins are at most 39 characters and repository names 100; keys stay far below
    // KV's 2,048-byte bound.
    full_name: z.string().max(200).regex(/^[^/\s]+\/[^/\s]+$/),
    owner: z.object({
      id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      login: z.string().max(100),
      type: z.string().max(64),
    }),
  }),
  /**
   * Present when the delivery comes from a GitHub App installation. A malformed one is dropped,
   * not refused: the review then finds its installation by repository.
   */
  installation: z.object({ id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER) })
    .optional().catch(undefined),
});
/** A validated `pull_request` payload. */
export type PullRequestPayload = z.infer<typeof PullRequestPayloadSchema>;

/** The part of a `pull_request.closed` payload that names the pull request. */
const ClosedPayloadSchema = z.object({
  number: z.number().int().positive().max(2 ** 31),
  pull_request: z.object({ updated_at: z.string().max(64).optional() }).optional(),
  repository: z.object({ full_name: z.string().max(200).regex(/^[^/\s]+\/[^/\s]+$/) }),
});

/** What to do with a webhook delivery. */
export type WebhookDecision =
  /** `draft`: the payload of a draft pull request (reviewed where the repository asks). */
  | { kind: "ignore"; reason: string; draft?: PullRequestPayload }
  | { kind: "invalid"; message: string }
  | { kind: "review"; payload: PullRequestPayload }
  /** A closed (or merged) pull request: its unfinished reviews stop. */
  | {
    kind: "close";
    repo: string;
    pullNumber: number;
    /** The close's `updated_at` (ms): later pushes and reopens are not its to stop. */
    closedAt?: number;
  };

/**
 * Decides whether a delivery starts a review. Only a triggering `pull_request` payload is
 * validated in full; other events and actions are ignored without judging their shape.
 *
 * @example
 * ```ts
 * classifyWebhook("ping", {}); // { kind: "ignore", reason: "event ping is not reviewed" }
 * ```
 */
export function classifyWebhook(event: string, body: unknown): WebhookDecision {
  if (event !== "pull_request") return { kind: "ignore", reason: `event ${event} is not reviewed` };
  const action = (body as { action?: unknown } | null)?.action;
  if (typeof action !== "string") return { kind: "invalid", message: "payload has no action" };
  if (action === "closed") {
    const closed = ClosedPayloadSchema.safeParse(body);
    if (!closed.success) {
      return { kind: "invalid", message: `invalid pull_request payload: ${closed.error.message}` };
    }
    const closedAt = Date.parse(closed.data.pull_request?.updated_at ?? "");
    return {
      kind: "close",
      repo: closed.data.repository.full_name,
      pullNumber: closed.data.number,
      ...(Number.isNaN(closedAt) ? {} : { closedAt }),
    };
  }
  if (!(TRIGGER_ACTIONS as readonly string[]).includes(action)) {
    return { kind: "ignore", reason: `action ${action} is not reviewed` };
  }
  const parsed = PullRequestPayloadSchema.safeParse(body);
  if (!parsed.success) {
    return { kind: "invalid", message: `invalid pull_request payload: ${parsed.error.message}` };
  }
  const pr = parsed.data.pull_request;
  if (pr.state !== "open") return { kind: "ignore", reason: "pull request is not open" };
  if (pr.draft) return { kind: "ignore", reason: "pull request is a draft", draft: parsed.data };
  return { kind: "review", payload: parsed.data };
}

/**
 * The owner of a payload's repository: organizations are `org`, users (and bots) `user`.
 *
 * @example
 * ```ts
 * ownerOf(payload); // { type: "org", id: "6811672", login: "octo-org" }
 * ```
 */
export function ownerOf(payload: PullRequestPayload): Owner {
  const o = payload.repository.owner;
  return { type: o.type === "Organization" ? "org" : "user", id: String(o.id), login: o.login };
}

/**
 * The pending review a triggering payload becomes.
 *
 * @example
 * ```ts
 * const review = reviewFromPayload(payload, { id: crypto.randomUUID(), deliveryId, now });
 * ```
 */
export function reviewFromPayload(
  payload: PullRequestPayload,
  meta: { id: string; deliveryId?: string; now: number },
): ReviewRecord {
  const pr = payload.pull_request;
  const updatedAt = pr.updated_at ? Date.parse(pr.updated_at) : NaN;
  return newReview({
    id: meta.id,
    source: "webhook",
    owner: ownerOf(payload),
    repo: payload.repository.full_name,
    pullNumber: pr.number,
    headSha: pr.head.sha,
    baseSha: pr.base.sha,
    title: pr.title,
    prUpdatedAt: Number.isNaN(updatedAt) ? undefined : updatedAt,
    createdAt: meta.now,
    deliveryId: meta.deliveryId,
    ...(payload.installation ? { installationId: payload.installation.id } : {}),
  });
}
