/**
 * Schemas of the review agent's SSE events (the agent protocol, see README).
 *
 * @module
 */
import { z } from "zod";

/** `finding` event data. */
export const AgentFindingSchema = z.object({
  severity: z.enum(["critical", "warning", "info"]),
  file_path: z.string().max(1000),
  line_number: z.number().int().nullable(),
  /** Last line of a range that starts at `line_number` (new-file numbering). */
  line_end: z.number().int().nullable().optional(),
  title: z.string().max(1000),
  description: z.string().max(20_000),
  suggestion: z.string().max(20_000).optional(),
  /** Exact new text for lines `line_number`..`line_end` (rendered as a GitHub suggestion). */
  replacement: z.string().max(20_000).optional(),
  agent_type: z.string().max(200),
});
/** A finding as the agent sends it. */
export type AgentFinding = z.infer<typeof AgentFindingSchema>;

/** `status` event data: progress text for operators. */
export const AgentStatusSchema = z.object({ message: z.string().max(10_000) });
/** `summary` event data. */
export const AgentSummarySchema = z.object({ text: z.string().max(20_000) });
/** `error` event data: final unless `retryable` is true. */
export const AgentErrorEventSchema = z.object({
  message: z.string().max(10_000),
  retryable: z.boolean().optional(),
});
/** `done` event data. */
export const AgentDoneSchema = z.object({}).passthrough();

/** The body `POST {AGENT_URL}/sessions` receives. */
export const AgentSessionRequestSchema = z.object({
  reviewId: z.string(),
  attempt: z.number().int().positive(),
  repo: z.string(),
  pullNumber: z.number().int().positive(),
  headSha: z.string(),
  baseSha: z.string(),
  title: z.string(),
  model: z.string().optional(),
  prompt: z.string().optional(),
  diff: z.string(),
  files: z.array(z.string()),
  sessionInput: z.record(z.string(), z.unknown()).optional(),
});
/** The agent session request body. */
export type AgentSessionRequest = z.infer<typeof AgentSessionRequestSchema>;
