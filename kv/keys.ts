/**
 * Every Deno KV key the service uses, built in one place (see `kv/README.md`). Keys are readable
 * tuples so the state can be browsed in the Deno Deploy KV inspector.
 *
 * @module
 */
import type { Owner } from "./records.ts";

/** Owner identity as it appears in keys: `["org", "123"]`. */
type OwnerRef = Pick<Owner, "type" | "id">;

/** Key builders, one per stored thing. */
export const keys = {
  /** `["reviews", id]` → ReviewRecord. */
  review: (id: string): Deno.KvKey => ["reviews", id],
  /** `["findings", reviewId, index]` → Finding. */
  finding: (reviewId: string, index: number): Deno.KvKey => ["findings", reviewId, index],
  /** Prefix of a review's findings. */
  findingsOf: (reviewId: string): Deno.KvKey => ["findings", reviewId],
  /** `["review_events", reviewId]` → ReviewEventLog: the review's last progress events. */
  reviewEvents: (reviewId: string): Deno.KvKey => ["review_events", reviewId],
  /** `["agent_rate"]` → AgentRateState: the token bucket of `AGENT_RATE_PER_MINUTE`. */
  agentRate: (): Deno.KvKey => ["agent_rate"],
  /** `["agent_sessions", slot]` → AgentSessionSlot: one of `MAX_CONCURRENT_TOTAL` session slots. */
  agentSession: (slot: number): Deno.KvKey => ["agent_sessions", slot],
  /** `["owners", type, id]` → OwnerState (slot and pending counters). */
  owner: (o: OwnerRef): Deno.KvKey => ["owners", o.type, o.id],
  /** Prefix of all owner states. */
  owners: (): Deno.KvKey => ["owners"],
  /** `["pending", type, id, createdAt, reviewId]` → reviewId: the owner's FIFO line. */
  pending: (o: OwnerRef, createdAt: number, reviewId: string): Deno.KvKey => [
    "pending",
    o.type,
    o.id,
    createdAt,
    reviewId,
  ],
  /** Prefix of one owner's pending line. */
  pendingOf: (o: OwnerRef): Deno.KvKey => ["pending", o.type, o.id],
  /** `["inflight", reviewId]` → owner: reviews holding a slot (queued or running). */
  inflight: (reviewId: string): Deno.KvKey => ["inflight", reviewId],
  /** Prefix of all in-flight reviews (what the sweeper scans). */
  inflightAll: (): Deno.KvKey => ["inflight"],
  /** `["owner_limits", type, id]` → owner: owners with a limit of their own (the overview). */
  ownerLimit: (o: OwnerRef): Deno.KvKey => ["owner_limits", o.type, o.id],
  /** Prefix of the owners with a limit of their own. */
  ownerLimits: (): Deno.KvKey => ["owner_limits"],
  /** `["owners_active", type, id]` → owner: owners with pending or running work (sweeps). */
  activeOwner: (o: OwnerRef): Deno.KvKey => ["owners_active", o.type, o.id],
  /** Prefix of the active-owner index. */
  activeOwners: (): Deno.KvKey => ["owners_active"],
  /** `["reviews_by_finish", finishedAt, id]` → id: finished reviews, oldest first (retention). */
  byFinish: (finishedAt: number, id: string): Deno.KvKey => ["reviews_by_finish", finishedAt, id],
  /** Prefix of the finish-time index. */
  byFinishAll: (): Deno.KvKey => ["reviews_by_finish"],
  /** `["reviews_by_time", createdAt, id]` → id. */
  byTime: (createdAt: number, id: string): Deno.KvKey => ["reviews_by_time", createdAt, id],
  /** Prefix of the global time index. */
  byTimeAll: (): Deno.KvKey => ["reviews_by_time"],
  /** `["reviews_by_owner", type, id, createdAt, reviewId]` → reviewId. */
  byOwner: (o: OwnerRef, createdAt: number, reviewId: string): Deno.KvKey => [
    "reviews_by_owner",
    o.type,
    o.id,
    createdAt,
    reviewId,
  ],
  /** Prefix of one owner's reviews. */
  byOwnerOf: (o: OwnerRef): Deno.KvKey => ["reviews_by_owner", o.type, o.id],
  /** `["reviews_by_owner_id", id, createdAt, reviewId]` → reviewId: an owner id of either type. */
  byOwnerId: (id: string, createdAt: number, reviewId: string): Deno.KvKey => [
    "reviews_by_owner_id",
    id,
    createdAt,
    reviewId,
  ],
  /** Prefix of the reviews of an owner id of either type. */
  byOwnerIdOf: (id: string): Deno.KvKey => ["reviews_by_owner_id", id],
  /** `["reviews_by_delivery", deliveryId]` → reviewId: webhook redelivery dedupe. */
  byDelivery: (deliveryId: string): Deno.KvKey => ["reviews_by_delivery", deliveryId],
  /** `["reviews_by_head", repo, pullNumber, headSha]` → reviewId: one review per PR head. */
  byHead: (repo: string, pullNumber: number, headSha: string): Deno.KvKey => [
    "reviews_by_head",
    repo,
    pullNumber,
    headSha,
  ],
  /** `["pr_active", repo, pullNumber, reviewId]` → reviewId: unfinished reviews of a PR. */
  prActive: (repo: string, pullNumber: number, reviewId: string): Deno.KvKey => [
    "pr_active",
    repo,
    pullNumber,
    reviewId,
  ],
  /** Prefix of a PR's unfinished reviews. */
  prActiveOf: (repo: string, pullNumber: number): Deno.KvKey => ["pr_active", repo, pullNumber],
  /** `["pr_comments", repo, pullNumber]` → {commentId, commentUrl}: the comment updated in place. */
  prComment: (repo: string, pullNumber: number): Deno.KvKey => ["pr_comments", repo, pullNumber],
  /** `["queue_due", dueAt, messageId]` → QueueMessage (kv-table transport). */
  queueDue: (dueAt: number, messageId: string): Deno.KvKey => ["queue_due", dueAt, messageId],
  /** Prefix of the kv-table transport's messages. */
  queueDueAll: (): Deno.KvKey => ["queue_due"],
  /** `["queue_wake"]` → messageId: watched by kv-table listeners to wake at once. */
  queueWake: (): Deno.KvKey => ["queue_wake"],
  /** `["live_change"]` → {instance, at}: bumped after state changes; watched by live dashboards. */
  liveChange: (): Deno.KvKey => ["live_change"],
  /** `["dashboard_sessions", id]` → DashboardSession (expires with the session). */
  dashboardSession: (id: string): Deno.KvKey => ["dashboard_sessions", id],
  /** `["health"]` → timestamp written by the health probe. */
  health: (): Deno.KvKey => ["health"],
  /** `["github_installation_tokens", installationId]` → InstallationTokenEntry (expires with it). */
  githubInstallationToken: (installationId: number): Deno.KvKey => [
    "github_installation_tokens",
    installationId,
  ],
  /** `["github_installations", ownerLogin]` → OwnerInstallationEntry (lower-cased login, 1 h). */
  githubInstallation: (ownerLogin: string): Deno.KvKey => ["github_installations", ownerLogin],
  /** `["github_installation_owners", installationId, ownerLogin]` → ownerLogin: reverse index. */
  githubInstallationOwner: (installationId: number, ownerLogin: string): Deno.KvKey => [
    "github_installation_owners",
    installationId,
    ownerLogin,
  ],
  /** Prefix of the owner logins mapped to an installation. */
  githubInstallationOwnersOf: (installationId: number): Deno.KvKey => [
    "github_installation_owners",
    installationId,
  ],
  /** `["repo_configs", repo, sha]` → CachedRepoConfig: `.github/ai-review.yml` at a commit. */
  repoConfig: (repo: string, sha: string): Deno.KvKey => ["repo_configs", repo, sha],
  /** `["repo_configs_latest", repo]` → CachedRepoConfig: the last one read for the repository. */
  repoConfigLatest: (repo: string): Deno.KvKey => ["repo_configs_latest", repo],
  /** `["commands_done", commentId]` → when: a `/review cancel` already carried out (30 days). */
  command: (commentId: number): Deno.KvKey => ["commands_done", commentId],
};
