/**
 * Schemas of the values stored in Deno KV. Every stored value is plain JSON so it reads well in
 * the Deno Deploy KV inspector; types are inferred from the schemas.
 *
 * @module
 */
import { z } from "zod";

/** Who a review belongs to: the GitHub organization or user that owns the repository. */
export const OwnerSchema = z.object({
  type: z.enum(["org", "user"]),
  id: z.string().min(1).max(64),
  login: z.string().max(100).optional(),
});
/** An owner; `type` and `id` together identify it. */
export type Owner = z.infer<typeof OwnerSchema>;

/** The stored severity scale. */
export const SeveritySchema = z.enum(["critical", "high", "medium", "low", "info"]);
/** A stored severity. */
export type Severity = z.infer<typeof SeveritySchema>;

/** One finding as stored (after mapping from the agent's event). */
export const FindingSchema = z.object({
  severity: SeveritySchema,
  file_path: z.string(),
  line_start: z.number().int().nullable(),
  /** Last line of a range (absent: one line). */
  line_end: z.number().int().nullable().optional(),
  title: z.string(),
  description: z.string(),
  suggestion: z.string().optional(),
  /** Exact new text for lines `line_start`..`line_end`, shown as a GitHub suggestion. */
  replacement: z.string().optional(),
  agent_type: z.string(),
});
/** A stored finding. */
export type Finding = z.infer<typeof FindingSchema>;

/** Review statuses, in the order a review moves through them. */
export const ReviewStatusSchema = z.enum([
  "pending",
  "queued",
  "running",
  "completed",
  "failed",
  "cancelled",
]);
/** A review's status. */
export type ReviewStatus = z.infer<typeof ReviewStatusSchema>;

/** Statuses after which a review never changes again. */
export const TERMINAL_STATUSES: readonly ReviewStatus[] = ["completed", "failed", "cancelled"];

/** Why a review ended the way it did. */
export const TerminalReasonSchema = z.enum([
  "completed",
  "superseded",
  "cancelled",
  "pr_closed",
  /** `.github/ai-review.yml` turned reviews off, or asks for them only on `/review`. */
  "disabled_by_config",
  "agent_error",
  "github_error",
  "timeout",
  "interrupted",
  "attempts_exhausted",
  "internal_error",
]);
/** A terminal reason. */
export type TerminalReason = z.infer<typeof TerminalReasonSchema>;

/** The lease of the attempt that currently runs the review's agent session. */
export const LeaseSchema = z.object({
  token: z.string(),
  instance: z.string(),
  expiresAt: z.number(),
});
/** An attempt lease. */
export type Lease = z.infer<typeof LeaseSchema>;

/** A request to stop a running review, written by cancel or supersede; its holder ends it. */
export const CancelRequestSchema = z.object({
  reason: z.enum(["cancelled", "superseded", "pr_closed"]),
  message: z.string(),
  at: z.number(),
});
/** A cancel request. */
export type CancelRequest = z.infer<typeof CancelRequestSchema>;

/** What a running review's agent is doing (written at most every `PROGRESS_WRITE_MS`). */
export const ProgressSchema = z.object({
  /** The agent's latest status line. */
  message: z.string(),
  at: z.number(),
});

/** Model, tokens and cost of a review, summed over its agent sessions. */
export const UsageSchema = z.object({
  model: z.string().optional(),
  tokensIn: z.number().nonnegative(),
  tokensOut: z.number().nonnegative(),
  /** US dollars, where the agent reports it. */
  cost: z.number().nonnegative(),
});
/** A review's usage totals. */
export type Usage = z.infer<typeof UsageSchema>;

/** One entry of a review's event log (`["review_events", id]`). */
export const ReviewEventSchema = z.object({
  at: z.number(),
  /** `attempt`, `session`, `status`, `finding`, `usage`, `error`, `wait`. */
  type: z.string(),
  message: z.string(),
  attempt: z.number().int().nonnegative().optional(),
});
/** An event log entry. */
export type ReviewEvent = z.infer<typeof ReviewEventSchema>;

/** `["review_events", id]`: the last events of a review, oldest first. */
export const ReviewEventLogSchema = z.object({ events: z.array(ReviewEventSchema) });
/** A review's event log. */
export type ReviewEventLog = z.infer<typeof ReviewEventLogSchema>;

/** A review as stored under `["reviews", id]` (findings live under their own keys). */
export const ReviewRecordSchema = z.object({
  id: z.string(),
  source: z.enum(["webhook", "api"]),
  owner: OwnerSchema,
  repo: z.string(),
  pullNumber: z.number().int().positive(),
  headSha: z.string().optional(),
  baseSha: z.string().optional(),
  title: z.string().optional(),
  /** `pull_request.updated_at` of the webhook (ms): orders pushes that arrive out of order. */
  prUpdatedAt: z.number().optional(),
  status: ReviewStatusSchema,
  /** Bumped by every write of the record: status callbacks carry it so receivers can order them. */
  rev: z.number().int().nonnegative().optional(),
  /** Set on a running review by cancel or supersede; the attempt holding the lease ends it. */
  cancelRequested: CancelRequestSchema.optional(),
  attempts: z.number().int().nonnegative(),
  /** Times a running attempt was handed back on shutdown (not counted as attempts). */
  handBacks: z.number().int().nonnegative(),
  /** Set while a handed-back review waits: any other instance's sweeper may dispatch it at once. */
  handedBackBy: z.string().optional(),
  createdAt: z.number(),
  queuedAt: z.number().optional(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  /** The dispatch that the next queue message must carry to start an attempt. */
  dispatchToken: z.string().optional(),
  /** When the current dispatch is due (retries are delayed). */
  dueAt: z.number().optional(),
  lease: LeaseSchema.optional(),
  deliveryId: z.string().optional(),
  sessionId: z.string().optional(),
  /** The running agent's latest status line. */
  progress: ProgressSchema.optional(),
  /** Findings the running session has reported so far. */
  findingsSoFar: z.number().int().nonnegative().optional(),
  usage: UsageSchema.optional(),
  /** Times an attempt waited for an agent limit or an agent's 429 (not counted as attempts). */
  deferrals: z.number().int().nonnegative().optional(),
  /** Of those, the agent's own 429s (bounded by `MAX_RATE_LIMIT_DEFERRALS`). */
  agentRateLimited: z.number().int().nonnegative().optional(),
  summary: z.string().optional(),
  findingCount: z.number().int().nonnegative(),
  /** Findings and summary are stored: a later attempt only posts the comment. */
  resultStored: z.boolean().optional(),
  skippedEvents: z.number().int().nonnegative(),
  commentId: z.number().optional(),
  commentUrl: z.string().optional(),
  errorMessage: z.string().optional(),
  /** The class of the error in `errorMessage` when an attempt failed and was retried. */
  errorClass: TerminalReasonSchema.optional(),
  terminalReason: TerminalReasonSchema.optional(),
  /** Pass-through for reviews created through `POST /review`. */
  prompt: z.string().optional(),
  model: z.string().optional(),
  sessionInput: z.record(z.string(), z.unknown()).optional(),
  /** Bearer token for the agent, from `POST /review`. Never returned by the API. */
  authToken: z.string().optional(),
  /** The GitHub App installation the webhook came from (API reviews look it up). */
  installationId: z.number().int().positive().optional(),
  /** The failed or cancelled review this one retries (`POST /reviews/:id/retry`). */
  retry: z.object({
    /** The review retried. */
    of: z.string(),
    /** The first review of the chain (retry ids are `<root>-retry-<number>`). */
    root: z.string(),
    number: z.number().int().positive(),
  }).optional(),
  /** The `/review` comment that asked for this review. */
  command: z.object({ commentId: z.number(), by: z.string() }).optional(),
  /** What the repository's configuration and the diff bounds left out, for the PR comment. */
  scope: z.object({
    /** One line per reason (ignored paths, max_files, max_diff_bytes). */
    leftOut: z.array(z.string()).optional(),
    /** Invalid fields of `.github/ai-review.yml` (defaults were used). */
    configProblems: z.array(z.string()).optional(),
    minSeverity: SeveritySchema.optional(),
    failOn: SeveritySchema.optional(),
    /** RIGHT-side line ranges of the hunks that hold a finding: `[path, first, last]`. */
    anchors: z.array(z.tuple([z.string(), z.number(), z.number()])).optional(),
  }).optional(),
  /** The inline review posted for the head (one per head). */
  inlineReviewId: z.number().optional(),
  inlineReviewUrl: z.string().optional(),
  /** The "AI review" check run on the head, or `status` where only a commit status could go. */
  checkRunId: z.number().optional(),
  checkRunUrl: z.string().optional(),
});
/** A stored review. */
export type ReviewRecord = z.infer<typeof ReviewRecordSchema>;

/** What a new review is given; {@link newReview} adds the rest. */
export type NewReviewFields = Omit<
  ReviewRecord,
  "status" | "attempts" | "handBacks" | "findingCount" | "skippedEvents"
>;

/**
 * A new `pending` review: its fields, and the counters every review starts with at zero.
 *
 * @example
 * ```ts
 * const review = newReview({ id, source: "api", owner, repo: "octo/app", pullNumber: 1,
 *   createdAt: Date.now() });
 * review.status; // "pending"
 * ```
 */
export function newReview(fields: NewReviewFields): ReviewRecord {
  return {
    ...fields,
    status: "pending",
    attempts: 0,
    handBacks: 0,
    findingCount: 0,
    skippedEvents: 0,
  };
}

/** Largest per-owner limit (`PUT /owners/:type/:id/limit`). */
export const MAX_OWNER_LIMIT = 100;

/** Per-owner counters under `["owners", type, id]`. */
export const OwnerStateSchema = z.object({
  owner: OwnerSchema,
  active: z.number().int().nonnegative(),
  pending: z.number().int().nonnegative(),
  /** The owner's own limit of reviews in flight; `MAX_CONCURRENT_PER_OWNER` when absent. */
  limit: z.number().int().min(0).max(MAX_OWNER_LIMIT).optional(),
});
/** Per-owner counters. */
export type OwnerState = z.infer<typeof OwnerStateSchema>;

/** Who is posting to a pull request's comment right now (one review at a time). */
export const PublishClaimSchema = z.object({
  reviewId: z.string(),
  leaseToken: z.string(),
  /** When it was taken. */
  at: z.number().optional(),
  expiresAt: z.number(),
});

/** `["pr_comments", repo, pullNumber]`: the comment reviews of a pull request update in place. */
export const PullCommentSchema = z.object({
  commentId: z.number().optional(),
  commentUrl: z.string().optional(),
  /** The review whose result the comment shows. */
  reviewId: z.string().optional(),
  claim: PublishClaimSchema.optional(),
});
/** A pull request's comment pointer. */
export type PullComment = z.infer<typeof PullCommentSchema>;
