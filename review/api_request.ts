/**
 * `POST /review` bodies, in the original worker's format, and the review they become.
 *
 * @module
 */
import { z } from "zod";
import { newReview, type ReviewRecord } from "../kv/records.ts";
import { kvValueBytes, MAX_RECORD_BYTES } from "../kv/size.ts";

/**
 * `sessionInput` (prompt included) is kept in the review record, which must stay under 64 KiB as
 * Deno KV measures it (two bytes a character once one is not Latin-1).
 */
export const MAX_SESSION_INPUT_BYTES = 24 * 1024;

/**
 * What a record may still gain while it runs: summary, error message, lease, comment link, stop
 * request, head shas, title, counters (each bounded where it is written).
 */
export const RECORD_GROWTH_BYTES = 24 * 1024;

/** Body of `POST /review`. Unknown `sessionInput` fields are passed through to the agent. */
export const CreateReviewBodySchema = z.object({
  reviewId: z.string().min(1).max(200).regex(
    /^[\w.:-]+$/,
    "reviewId may hold letters, digits, _ . : -",
  ),
  authToken: z.string().min(1).max(8_192),
  owner: z.object({
    type: z.enum(["user", "org"]),
    // The same ids the owner routes and filters take, so every owner can be listed and limited.
    id: z.union([
      z.string().regex(/^[\w.-]{1,64}$/, "owner.id must be 1 to 64 letters, digits, . _ or -"),
      z.number().int(),
    ]).transform(String),
    userId: z.union([z.string(), z.number()]).optional(),
    login: z.string().max(100).optional(),
  }),
  sessionInput: z.object({
    githubRepo: z.string().max(200).regex(/^[^/\s]+\/[^/\s]+$/, "githubRepo must be owner/name"),
    pullNumber: z.number().int().positive().max(2 ** 31),
    prompt: z.string().optional(),
    model: z.string().max(200).optional(),
  }).passthrough().refine((input) => kvValueBytes(input) <= MAX_SESSION_INPUT_BYTES, {
    message: `sessionInput (prompt included) must be at most ${MAX_SESSION_INPUT_BYTES} bytes ` +
      "as stored (2 bytes a character when any character is outside Latin-1)",
  }),
});
/** A validated `POST /review` body. */
export type CreateReviewBody = z.infer<typeof CreateReviewBodySchema>;

/**
 * The pending review a `POST /review` body becomes (head sha filled in when the pipeline runs).
 *
 * @example
 * ```ts
 * const review = reviewFromApiBody(body, Date.now());
 * ```
 */
export function reviewFromApiBody(body: CreateReviewBody, now: number): ReviewRecord {
  const { githubRepo, pullNumber, prompt, model, ...rest } = body.sessionInput;
  return newReview({
    id: body.reviewId,
    source: "api",
    owner: { type: body.owner.type, id: body.owner.id, login: body.owner.login },
    repo: githubRepo,
    pullNumber,
    createdAt: now,
    prompt,
    model,
    sessionInput: { githubRepo, pullNumber, ...rest },
    authToken: body.authToken,
  });
}

/**
 * Why a new review record is too large to store and run, or `undefined` when it fits with room
 * for everything it gains while it runs (checked at the edge, so the caller gets a 400).
 *
 * @example
 * ```ts
 * const problem = recordTooLarge(reviewFromApiBody(body, Date.now()));
 * if (problem) return c.json({ error: problem }, 400);
 * ```
 */
export function recordTooLarge(record: ReviewRecord): string | undefined {
  const bytes = kvValueBytes(record);
  if (bytes + RECORD_GROWTH_BYTES <= MAX_RECORD_BYTES) return undefined;
  return `review is ${bytes} bytes as stored; at most ${
    MAX_RECORD_BYTES - RECORD_GROWTH_BYTES
  } fit (shorten sessionInput, prompt or authToken)`;
}
