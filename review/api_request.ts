/**
 * `POST /review` bodies, in the original worker's format, and the review they become.
 *
 * @module
 */
import { z } from "zod";
import type { ReviewRecord } from "../kv/records.ts";
import { jsonBytes } from "./text.ts";

/** `sessionInput` (prompt included) is kept in the review record, which must stay under 64 KiB. */
export const MAX_SESSION_INPUT_BYTES = 24 * 1024;

/** Body of `POST /review`. Unknown `sessionInput` fields are passed through to the agent. */
export const CreateReviewBodySchema = z.object({
  reviewId: z.string().min(1).max(200).regex(
    /^[\w.:-]+$/,
    "reviewId may hold letters, digits, _ . : -",
  ),
  authToken: z.string().min(1).max(10_000),
  owner: z.object({
    type: z.enum(["user", "org"]),
    id: z.union([z.string().min(1).max(64), z.number().int()]).transform(String),
    userId: z.union([z.string(), z.number()]).optional(),
    login: z.string().max(100).optional(),
  }),
  sessionInput: z.object({
    githubRepo: z.string().regex(/^[^/\s]+\/[^/\s]+$/, "githubRepo must be owner/name"),
    pullNumber: z.number().int().positive(),
    prompt: z.string().optional(),
    model: z.string().max(200).optional(),
  }).passthrough().refine((input) => jsonBytes(input) <= MAX_SESSION_INPUT_BYTES, {
    message:
      `sessionInput (prompt included) must be at most ${MAX_SESSION_INPUT_BYTES} bytes of JSON`,
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
  return {
    id: body.reviewId,
    source: "api",
    owner: { type: body.owner.type, id: body.owner.id, login: body.owner.login },
    repo: githubRepo,
    pullNumber,
    status: "pending",
    attempts: 0,
    handBacks: 0,
    createdAt: now,
    findingCount: 0,
    skippedEvents: 0,
    prompt,
    model,
    sessionInput: { githubRepo, pullNumber, ...rest },
    authToken: body.authToken,
  };
}
