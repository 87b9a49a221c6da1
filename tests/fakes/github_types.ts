/**
 * The records the fake GitHub keeps for its GitHub App endpoints (installations, tokens, reviews,
 * check runs, statuses, files, reactions); re-exported by `github.ts`.
 *
 * @module
 */

/** Options of `FakeGitHub.enableApp`. */
export interface FakeAppOptions {
  /** The app id a JWT's `iss` must equal (compared as strings). */
  appId: number | string;
  /** The app's public key (SPKI `BEGIN PUBLIC KEY`, or PKCS#1 `BEGIN RSA PUBLIC KEY`) PEM. */
  publicKeyPem: string;
  /** Lifetime of installation tokens (default one hour). */
  tokenTtlMs?: number;
  /** The app slug: installation tokens write as `<slug>[bot]` (default `ai-review`). */
  slug?: string;
}

/** An installation of the app on an account. */
export interface FakeInstallation {
  /** Installation id. */
  id: number;
  /** The account (organisation) login. */
  owner: string;
  /** Repositories the installation may reach (`undefined`: all of the owner's). */
  repos?: string[];
  /** False once uninstalled: no new tokens, and its tokens answer 401. */
  active: boolean;
}

/** An installation access token the fake issued. */
export interface IssuedToken {
  /** Installation the token belongs to. */
  installationId: number;
  /** The token (`ghs_…`). */
  token: string;
  /** When it expires (ISO 8601, whole seconds, like `expires_at`); tests may move it. */
  expiresAt: string;
}

/** One inline comment of a review, as validated against the pull's diff. */
export interface FakeReviewComment {
  /** Review comment id. */
  id: number;
  /** File path (the new path). */
  path: string;
  /** Last line of the commented range. */
  line: number;
  /** Side of `line`. */
  side: "LEFT" | "RIGHT";
  /** First line of a multi-line range. */
  startLine?: number;
  /** Side of `startLine`. */
  startSide?: "LEFT" | "RIGHT";
  /** Markdown body. */
  body: string;
}

/** A pull request review posted to the fake. */
export interface FakeReview {
  /** Review id. */
  id: number;
  /** GraphQL global id (`PRR_…`), what `minimizeComment` takes. */
  nodeId: string;
  /** Repository owner login. */
  owner: string;
  /** Repository name. */
  repo: string;
  /** Pull request number. */
  pullNumber: number;
  /** Reviewed commit (the pull's head when not given). */
  commitId: string;
  /** Review body (`""` when none). */
  body: string;
  /** `APPROVE`, `REQUEST_CHANGES`, `COMMENT`, or `undefined` (a pending review). */
  event?: string;
  /** `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED` or `PENDING`. */
  state: string;
  /** Inline comments. */
  comments: FakeReviewComment[];
  /** Author login (`review-bot`, or `<slug>[bot]` for an installation token). */
  author: string;
  /** Author type. */
  authorType: "User" | "Bot";
  /** When submitted (ISO 8601). */
  submittedAt: string;
  /** Set by the `minimizeComment` mutation. */
  minimized?: { classifier: string };
}

/** A check-run annotation, as sent (GitHub's snake_case fields). */
export interface FakeAnnotation {
  path: string;
  start_line: number;
  end_line: number;
  start_column?: number;
  end_column?: number;
  annotation_level: "notice" | "warning" | "failure";
  message: string;
  title?: string;
  raw_details?: string;
}

/** A check run created on the fake, with every update applied. */
export interface FakeCheckRun {
  /** Check run id. */
  id: number;
  /** Repository owner login. */
  owner: string;
  /** Repository name. */
  repo: string;
  /** Check name. */
  name: string;
  /** The commit checked. */
  headSha: string;
  /** `external_id` (`""` when none). */
  externalId: string;
  /** `queued`, `in_progress`, `completed`, … */
  status: string;
  /** Set when completed. */
  conclusion: string | null;
  /** `started_at`. */
  startedAt: string | null;
  /** `completed_at`. */
  completedAt: string | null;
  /** `details_url`. */
  detailsUrl: string | null;
  /** The current output (an update replaces title, summary and text). */
  output: { title: string | null; summary: string | null; text: string | null };
  /** Every annotation of every request, appended in order. */
  annotations: FakeAnnotation[];
  /** How many PATCHes were applied. */
  updates: number;
  /** Login of the creator (`<slug>[bot]` for an installation token). */
  author: string;
}

/** A commit status posted to the fake. */
export interface FakeStatus {
  /** Status id. */
  id: number;
  /** Repository owner login. */
  owner: string;
  /** Repository name. */
  repo: string;
  /** The commit. */
  sha: string;
  /** `error`, `failure`, `pending` or `success`. */
  state: string;
  /** `target_url`. */
  targetUrl: string | null;
  /** `description`. */
  description: string | null;
  /** `context` (`default` when not given). */
  context: string;
  /** Login of the creator. */
  author: string;
  /** When created (ISO 8601). */
  createdAt: string;
}

/** A reaction to an issue comment. */
export interface FakeReaction {
  /** Reaction id. */
  id: number;
  /** Repository owner login. */
  owner: string;
  /** Repository name. */
  repo: string;
  /** The issue comment reacted to. */
  commentId: number;
  /** `+1`, `-1`, `laugh`, `confused`, `heart`, `hooray`, `rocket` or `eyes`. */
  content: string;
  /** Who reacted. */
  user: string;
  /** Their type. */
  userType: "User" | "Bot";
}

/** Options of `FakeGitHub.addComment`: a comment someone else wrote. */
export interface AddCommentOptions {
  /** Repository owner login. */
  owner: string;
  /** Repository name. */
  repo: string;
  /** The issue (pull request) number. */
  issueNumber: number;
  /** Body. */
  body: string;
  /** Author login. */
  author: string;
  /** Author type (default `Bot` for a login ending in `[bot]`, else `User`). */
  authorType?: "User" | "Bot";
}
