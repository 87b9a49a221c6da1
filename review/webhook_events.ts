/**
 * The GitHub App's other webhook events: `/review` commands in pull request comments
 * (`issue_comment.created`) and installation changes (`installation`, `installation_repositories`).
 *
 * @module
 */
import { z } from "zod";
import { newReview, type Owner, type ReviewRecord } from "../kv/records.ts";

/** Who may ask for a review in a comment (`author_association`). */
export const COMMAND_ASSOCIATIONS = ["OWNER", "MEMBER", "COLLABORATOR"] as const;

const RepositorySchema = z.object({
  full_name: z.string().max(200).regex(/^[^/\s]+\/[^/\s]+$/),
  owner: z.object({
    id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    login: z.string().max(100),
    type: z.string().max(64),
  }),
});

const InstallationRefSchema = z.object({
  id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
})
  .optional().catch(undefined);

/** The part of an `issue_comment` payload a command needs. */
const IssueCommentSchema = z.object({
  action: z.string(),
  issue: z.object({
    number: z.number().int().positive().max(2 ** 31),
    state: z.string().max(32),
    // Present only on pull requests' comments.
    pull_request: z.object({}).passthrough().optional(),
  }),
  comment: z.object({
    id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    body: z.string().max(70_000).nullable(),
    author_association: z.string().max(64),
    user: z.object({ login: z.string().max(100) }),
  }),
  repository: RepositorySchema,
  installation: InstallationRefSchema,
});

const InstallationEventSchema = z.object({
  action: z.string().max(64),
  installation: z.object({
    id: z.number().int().positive(),
    account: z.object({ login: z.string().max(100) }).nullable().optional(),
  }),
});

/** A `/review` command, or an installation change. */
export type EventDecision =
  | { kind: "ignore"; reason: string }
  | { kind: "invalid"; message: string }
  | {
    kind: "command";
    command: "review" | "cancel";
    repo: string;
    pullNumber: number;
    owner: Owner;
    commentId: number;
    by: string;
    installationId?: number;
  }
  | { kind: "installation"; installationId: number; login?: string; drop: boolean };

/** Installation actions after which its cached token must not be used. */
const DROPPING_ACTIONS = ["deleted", "suspend", "removed", "new_permissions_accepted"];

/**
 * Classifies an `issue_comment`, `installation` or `installation_repositories` delivery.
 *
 * @example
 * ```ts
 * classifyEvent("issue_comment", payload); // { kind: "command", command: "review", … }
 * ```
 */
export function classifyEvent(event: string, body: unknown): EventDecision {
  if (event === "installation" || event === "installation_repositories") {
    const parsed = InstallationEventSchema.safeParse(body);
    if (!parsed.success) {
      return { kind: "invalid", message: `invalid ${event} payload: ${parsed.error.message}` };
    }
    const { action, installation } = parsed.data;
    return {
      kind: "installation",
      installationId: installation.id,
      login: installation.account?.login,
      // A token's permissions and repositories are fixed when it is made: renew after changes.
      drop: DROPPING_ACTIONS.includes(action),
    };
  }
  const action = (body as { action?: unknown } | null)?.action;
  if (action !== "created") return { kind: "ignore", reason: `issue_comment ${action} is ignored` };
  // Most comments are not commands: look at the text before judging the payload's shape.
  const text = (body as { comment?: { body?: unknown } }).comment?.body;
  const command = typeof text === "string" ? parseCommand(text) : null;
  if (!command) return { kind: "ignore", reason: "comment is not a /review command" };
  const parsed = IssueCommentSchema.safeParse(body);
  if (!parsed.success) {
    return { kind: "invalid", message: `invalid issue_comment payload: ${parsed.error.message}` };
  }
  const { issue, comment, repository, installation } = parsed.data;
  if (!issue.pull_request) return { kind: "ignore", reason: "comment is not on a pull request" };
  if (!(COMMAND_ASSOCIATIONS as readonly string[]).includes(comment.author_association)) {
    return {
      kind: "ignore",
      reason: `${comment.author_association} may not run /review (owners, members and ` +
        "collaborators may)",
    };
  }
  if (command === "review" && issue.state !== "open") {
    return { kind: "ignore", reason: "pull request is not open" };
  }
  const o = repository.owner;
  return {
    kind: "command",
    command,
    repo: repository.full_name,
    pullNumber: issue.number,
    owner: { type: o.type === "Organization" ? "org" : "user", id: String(o.id), login: o.login },
    commentId: comment.id,
    by: comment.user.login,
    installationId: installation?.id,
  };
}

/**
 * The command a comment starts with: `/review` or `/review cancel` (case-insensitive, leading
 * blank lines allowed); `null` for anything else (`/reviewer`, `/review please do`).
 *
 * @example
 * ```ts
 * parseCommand("/review"); // "review"
 * parseCommand("/review cancel"); // "cancel"
 * parseCommand("please /review"); // null
 * ```
 */
export function parseCommand(text: string): "review" | "cancel" | null {
  const first = text.trimStart().split(/\r?\n/, 1)[0].trim().toLowerCase();
  if (first === "/review") return "review";
  if (/^\/review\s+cancel$/.test(first)) return "cancel";
  return null;
}

/**
 * The pending review a `/review` command becomes. Its id comes from the comment's id, so a
 * redelivered comment finds the review it made instead of making another. The head is read from
 * GitHub when it runs.
 *
 * @example
 * ```ts
 * const review = reviewFromCommand(decision, { deliveryId, now: Date.now() });
 * ```
 */
export function reviewFromCommand(
  command: Extract<EventDecision, { kind: "command" }>,
  meta: { deliveryId?: string; now: number },
): ReviewRecord {
  return newReview({
    id: commandReviewId(command.commentId),
    source: "webhook",
    owner: command.owner,
    repo: command.repo,
    pullNumber: command.pullNumber,
    createdAt: meta.now,
    deliveryId: meta.deliveryId,
    command: { commentId: command.commentId, by: command.by },
    ...(command.installationId ? { installationId: command.installationId } : {}),
  });
}

/**
 * The review id of a `/review` comment.
 *
 * @example
 * ```ts
 * commandReviewId(1234); // "comment-1234"
 * ```
 */
export function commandReviewId(commentId: number): string {
  return `comment-${commentId}`;
}
