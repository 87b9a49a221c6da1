/**
 * The simulated world: GitHub (pull requests, pushes, webhooks delivered late, twice or out of
 * order, comments), 2–4 service instances with skewed clocks that crash, shut down and come back,
 * a queue that redelivers and reorders, API cancels, and the review attempts, each following the
 * steps of `review/pipeline.ts`, `review/publish.ts` and `review/lease_guard.ts` over the real KV
 * functions. Every choice comes from one seeded PRNG; invariants are checked after every step.
 *
 * @module
 */
import {
  finishAttempt,
  handBack,
  renewLease,
  scheduleRetry,
  startAttempt,
  storeFindings,
  updateRunning,
} from "../../kv/attempts.ts";
import { cancelReview, supersedeOthers } from "../../kv/cancel.ts";
import { type Changes, type Dispatch, mergeChanges } from "../../kv/changes.ts";
import { createReview, type SupersedeMode } from "../../kv/ingest.ts";
import type { TxnContext } from "../../kv/owner_txn.ts";
import { claimIn, claimPublish, releasePublishClaim } from "../../kv/publish.ts";
import { getFindings, getReview } from "../../kv/queries.ts";
import type { Finding, Owner, PullComment, ReviewRecord } from "../../kv/records.ts";
import { fillActiveOwners, purgeFinished, recoverStalled } from "../../kv/sweeps.ts";
import {
  attemptLimit,
  holdsLease,
  isTerminal,
  type Outcome,
  stopOutcome,
} from "../../kv/transitions.ts";
import { REVIEW_COMMENT_MARKER } from "../../review/comment.ts";
import { ReviewError } from "../../review/errors.ts";
import { CLAIM_ORPHAN_MS, postOnce, PUBLISH_CLAIM_MS } from "../../review/publish.ts";
import { DEFAULT_GITHUB_TIMEOUT_MS } from "../../review/github.ts";
import { classifyWebhook, reviewFromPayload } from "../../review/webhook_payload.ts";
import type { PostedComment } from "../../review/github.ts";
import { GitHubModel, type OwnerModel, type PrModel, shaOf } from "./github_model.ts";
import { Mirror, ownerKey } from "./mirror.ts";
import { Rng } from "./rng.ts";
import { type CommitHooks, SimKv, type SimOp } from "./sim_kv.ts";

/** Lease, skew and retry settings: the service's defaults (`review/config.ts`). */
export const LEASE_MS = 30_000;
export const SKEW_MS = 5_000;
const CHECK_MS = Math.max(10, Math.min(1_000, Math.floor(LEASE_MS / 4)));
const RENEW_EVERY_MS = Math.max(10, Math.floor(LEASE_MS / 3));
const MAX_ATTEMPTS = 3;
const MAX_HAND_BACKS = 10;
const RETRY_BASE_DELAY_MS = 5_000;
const MAX_RETRY_DELAY_MS = 3_600_000;
/** Shorter than the service's 30 days so that purges happen within a run. */
const RETENTION_MS = 20 * 60_000;
const API_CANCEL_REASON = "cancelled by the simulated API";
const BASE_SHA = "b".repeat(40);
const T0 = 1_767_225_600_000;

/** Fault rates. */
export interface Faults {
  /** A commit throws `database is locked` before it applies. */
  locked: number;
  /** A commit applies and then throws `database is locked` (its answer is lost). */
  lost: number;
  /** Another actor's step runs between a transaction's reads and its commit. */
  interpose: number;
}

/** Options of one run. */
export interface SimOptions {
  seed: number;
  steps: number;
  faults: Faults;
  /** Record violations and go on instead of failing at the first. */
  survey?: boolean;
  /** Print every step. */
  trace?: boolean;
}

/** One broken invariant. */
export interface Violation {
  invariant: number;
  step: number;
  message: string;
  report: string;
}

/** What a run did. */
export interface SimReport {
  seed: number;
  steps: number;
  nestedSteps: number;
  drainSteps: number;
  owners: number;
  instances: number;
  limits: number[];
  prs: number;
  reviews: number;
  outcomes: Record<string, number>;
  sessionsPeak: number;
  sessionsPeakOwnerAtLimit: number;
  ownersAtLimit: number;
  maxSessionsPerOwner: Array<[number, number]>;
  commits: number;
  lockedInjected: number;
  lostInjected: number;
  interposed: number;
  messagesSent: number;
  /** Messages removed by the start commit of a same-process start. */
  messagesDropped: number;
  deliveries: number;
  staleDeliveries: number;
  attemptsStarted: number;
  leaseExpiries: number;
  crashes: number;
  shutdowns: number;
  comments: number;
  purged: number;
  simMinutes: number;
  orphanLeases: number;
  /** Reviews that joined a line ahead (by createdAt) of one claimed in the same commit. */
  skewedJoins: number;
  /** FNV-1a of the step trace: equal for two runs of one seed. */
  fingerprint: string;
  violations: Violation[];
}

/** A violated invariant (the message carries seed, step and trace). */
export class SimViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SimViolation";
  }
}

interface Instance {
  base: string;
  name: string;
  generation: number;
  alive: boolean;
  stopping: boolean;
  offset: number;
  renewFailUntil: number;
}

/** `claimed`: the result's commit took the publish claim; posting checks the signal once first. */
type Phase = "fetch" | "act" | "agent" | "store" | "claim" | "claimed" | "post" | "finish";

interface Attempt {
  /** The start commit's versionstamp: what `supersedeOthers` orders by (`review/pipeline.ts`). */
  startVersionstamp: string;
  token: string;
  reviewId: string;
  owner: OwnerModel;
  pr: PrModel;
  instance: Instance;
  started: ReviewRecord;
  ready?: ReviewRecord;
  expiresAt: number;
  nextRenew: number;
  phase: Phase;
  snapshot?: { head: string; open: boolean; readAt: number };
  findings: Finding[];
  pointer?: PullComment;
  comment?: PostedComment;
  live: boolean;
}

interface Delivery {
  id: string;
  action: "opened" | "synchronize" | "reopened" | "ready_for_review";
  pr: PrModel;
  head: string;
  updatedAt: number;
}

interface Message extends Dispatch {
  dueAt: number;
}

type StepKind =
  | "push"
  | "close"
  | "reopen"
  | "webhook"
  | "apiReview"
  | "apiBurst"
  | "message"
  | "attempt"
  | "notice"
  | "cancel"
  | "advance"
  | "sweep"
  | "crash"
  | "shutdown"
  | "revive"
  | "renewFail"
  | "deleteComment";

/** Once its claim is taken, `publishAndComplete` posts and finishes whatever the signal says. */
function posting(a: Attempt): boolean {
  return a.phase === "post" || a.phase === "finish";
}

function drawLimit(rng: Rng): number {
  const x = rng.next();
  if (x < 0.45) return rng.range(1, 3);
  if (x < 0.75) return rng.range(4, 10);
  return rng.range(11, 40);
}

async function* entriesOf(list: Deno.KvEntry<unknown>[]): AsyncIterable<Deno.KvEntry<unknown>> {
  for (const e of list) yield e;
}

function samePrefix(selector: Deno.KvListSelector, prefix: string): boolean {
  const p = (selector as { prefix?: Deno.KvKey }).prefix;
  return p !== undefined && p.length === 1 && p[0] === prefix;
}

/** One simulation run over its own in-memory KV. */
export class Sim {
  readonly opts: SimOptions;
  readonly rng: Rng;
  readonly #faultRng: Rng;
  readonly #ghRng: Rng;
  readonly #kvReal: Deno.Kv;
  readonly kv: SimKv;
  readonly mirror: Mirror;
  readonly github: GitHubModel;
  readonly owners: OwnerModel[] = [];
  readonly ownersByKey = new Map<string, OwnerModel>();
  readonly prs: PrModel[] = [];
  readonly instances: Instance[] = [];
  readonly outbox: Delivery[] = [];
  readonly queue: Message[] = [];
  readonly attempts = new Map<string, Attempt>();
  readonly sessions = new Map<string, number>();
  readonly sessionsMax = new Map<string, number>();
  readonly #sent = new Set<string>();
  readonly #createdSeq = new Map<string, number>();
  readonly #trace: string[] = [];
  readonly violations: Violation[] = [];
  readonly #kicks: Array<{ instance: Instance; dispatch: Dispatch }> = [];
  T = T0;
  step = 0;
  #depth = 0;
  #actor: string | null = null;
  #draining = false;
  #ids = 0;
  #deliveries = 0;
  #current = "";
  #fingerprint = 2166136261;
  readonly #sessionTokens = new Set<string>();
  /** Step at which each review ended. */
  readonly #endedAt = new Map<string, number>();
  /** Step of each pull request's last reopen. */
  readonly #reopenedAt = new Map<PrModel, number>();
  stats = {
    nested: 0,
    drain: 0,
    locked: 0,
    lost: 0,
    interposed: 0,
    sent: 0,
    dropped: 0,
    delivered: 0,
    stale: 0,
    started: 0,
    expiries: 0,
    crashes: 0,
    shutdowns: 0,
    purged: 0,
    sessionsPeak: 0,
    orphanLeases: 0,
  };

  private constructor(opts: SimOptions, kvReal: Deno.Kv) {
    this.opts = opts;
    this.rng = new Rng(opts.seed);
    this.#faultRng = this.rng.fork();
    this.#ghRng = this.rng.fork();
    this.#kvReal = kvReal;
    const hooks: CommitHooks = {
      before: (op) => this.#beforeCommit(op),
      failBefore: () => {
        const fail = this.#faultRng.chance(this.opts.faults.locked);
        if (fail) this.stats.locked++;
        return fail;
      },
      failAfter: () => {
        const fail = !this.#draining && this.#faultRng.chance(this.opts.faults.lost);
        if (fail) this.stats.lost++;
        return fail;
      },
      applied: (commit) => this.mirror.apply(commit),
    };
    this.kv = new SimKv(kvReal, hooks);
    this.mirror = new Mirror({
      violate: (inv, message, review) => this.violate(inv, message, review),
      liveHolder: (token) => {
        const a = this.attempts.get(token);
        return a?.live ? { instance: a.instance.name } : undefined;
      },
      sent: (d) => {
        this.stats.sent++;
        this.#sent.add(`${d.reviewId}:${d.token}`);
        this.queue.push({ ...d, dueAt: this.T + d.delayMs });
      },
      dropped: (ref) => {
        // A same-process start removed the message in its own commit (`kv-table`); a copy a
        // listener already took (here: delivered and not left for redelivery) is not affected.
        const index = this.queue.findIndex((m) => m.ref && m.ref[1] === ref[1]);
        if (index >= 0) {
          this.queue.splice(index, 1);
          this.stats.dropped++;
        }
      },
      statusChanged: (review, from) => {
        // A lease whose holder never learned it took it (its start's answer was lost).
        if (from?.status === "running" && !this.#sessionTokens.has(from.lease!.token)) {
          this.stats.orphanLeases++;
        }
        if (isTerminal(review)) this.#endedAt.set(review.id, this.step);
        const pr = this.#prOf(review);
        if (!pr) return;
        const why = isTerminal(review)
          ? ` (${review.terminalReason}${review.errorMessage ? `: ${review.errorMessage}` : ""})`
          : "";
        this.#prLog(
          pr,
          `${review.id}[${review.headSha?.slice(8, 16) ?? "no head"}] ${
            from?.status ?? "new"
          } → ${review.status}${why}${
            review.status === "running" ? ` attempt ${review.attempts}` : ""
          }${from ? "" : ` (createdAt T+${review.createdAt - T0})`}`,
        );
      },
    });
    this.github = new GitHubModel(this.#ghRng, {
      createFails: 0.03,
      createAmbiguousCreated: 0.04,
      createAmbiguousLost: 0.02,
      updateFails: 0.02,
    }, (pr) => {
      if (pr.comments.length > 1) {
        this.violate(5, `${pr.key} has ${pr.comments.length} review comments`, undefined, pr);
      }
    });
  }

  /** Opens a run over a fresh `:memory:` KV. */
  static async open(opts: SimOptions): Promise<Sim> {
    const sim = new Sim(opts, await Deno.openKv(":memory:"));
    sim.#setUp();
    return sim;
  }

  close(): void {
    this.#kvReal.close();
  }

  // ---------------------------------------------------------------- set-up

  #setUp() {
    const rng = this.rng;
    const ownerCount = rng.range(20, 28);
    for (let i = 0; i < ownerCount; i++) {
      const type = rng.chance(0.3) ? "user" : "org";
      const id = String(1000 + i);
      const owner: OwnerModel = {
        index: i,
        type,
        id,
        login: `own${i}`,
        key: `${type}:${id}`,
        limit: drawLimit(rng),
        weight: rng.pick([1, 1, 2, 3, 6]),
        prs: [],
      };
      this.owners.push(owner);
      this.ownersByKey.set(owner.key, owner);
      const prCount = rng.range(2, 5);
      for (let j = 0; j < prCount; j++) {
        const repo = `${owner.login}/repo${j % 2}`;
        const pr: PrModel = {
          key: `${repo}#${j + 1}`,
          index: this.prs.length,
          owner,
          repo,
          number: j + 1,
          open: true,
          headSeq: 0,
          head: shaOf(this.prs.length, 0),
          updatedAt: this.T - rng.range(0, 600_000),
          comments: [],
          log: [],
        };
        owner.prs.push(pr);
        this.prs.push(pr);
        this.github.prs.set(pr.key, pr);
        this.outbox.push(this.#delivery(pr, "opened"));
      }
    }
    const instanceCount = rng.range(2, 4);
    for (let i = 0; i < instanceCount; i++) {
      this.instances.push({
        base: `i${i}`,
        name: `i${i}.0`,
        generation: 0,
        alive: true,
        stopping: false,
        offset: rng.range(-SKEW_MS / 2, SKEW_MS / 2),
        renewFailUntil: 0,
      });
    }
  }

  #delivery(pr: PrModel, action: Delivery["action"]): Delivery {
    return {
      id: `d${++this.#deliveries}`,
      action,
      pr,
      head: pr.head,
      updatedAt: pr.updatedAt,
    };
  }

  // ---------------------------------------------------------------- helpers

  #local(instance: Instance): number {
    return this.T + instance.offset;
  }

  #ctx(instance: Instance, owner: OwnerModel, kv: SimKv = this.kv): TxnContext {
    return {
      kv: kv.kv,
      enqueue: (op, dispatch) => (op as unknown as SimOp).enqueueDispatch(dispatch),
      drop: (op, ref) => (op as unknown as SimOp).dropMessage(ref),
      now: this.#local(instance),
      limit: owner.limit,
    };
  }

  #ownerOf(review: Pick<ReviewRecord, "owner">): OwnerModel {
    const owner = this.ownersByKey.get(ownerKey(review.owner));
    if (!owner) throw new Error(`unknown owner ${ownerKey(review.owner)}`);
    return owner;
  }

  #prOf(review: Pick<ReviewRecord, "repo" | "pullNumber">): PrModel | undefined {
    return this.github.prs.get(`${review.repo}#${review.pullNumber}`);
  }

  #prLog(pr: PrModel, text: string) {
    pr.log.push(`#${this.step}${this.#depth ? "(nested)" : ""} ${text}`);
    if (pr.log.length > 80) pr.log.splice(0, pr.log.length - 80);
  }

  #note(text: string) {
    this.#current += (this.#current ? "; " : "") + text;
  }

  #live(): Instance[] {
    return this.instances.filter((i) => i.alive && !i.stopping);
  }

  /** Records (survey) or throws a violation with seed, step and the recent trace. */
  violate(invariant: number, message: string, review?: ReviewRecord, pr?: PrModel): void {
    const prModel = pr ?? (review ? this.#prOf(review) : undefined);
    const lines = [
      `simulation seed=${this.opts.seed} step=${this.step}${
        this.#draining ? " (draining)" : ""
      }: invariant ${invariant} violated: ${message}`,
      `replay: SIM_SEED=${this.opts.seed} SIM_STEPS=${this.opts.steps} deno test -A ` +
      "tests/simulation_test.ts",
      `current step: ${this.#current}`,
      "recent steps:",
      ...this.#trace.slice(-25).map((t) => `  ${t}`),
    ];
    if (prModel) lines.push(`events of ${prModel.key}:`, ...prModel.log.map((t) => `  ${t}`));
    const report = lines.join("\n");
    this.violations.push({ invariant, step: this.step, message, report });
    if (!this.opts.survey) throw new SimViolation(report);
  }

  #apply(instance: Instance, changes: Changes) {
    for (const { dispatch } of changes.dispatched) {
      if (!this.#sent.has(`${dispatch.reviewId}:${dispatch.token}`)) {
        this.violate(
          3,
          `changes report dispatch ${dispatch.token} of ${dispatch.reviewId} that no applied ` +
            "commit sent",
        );
      }
      // Same-process fast path (`queue/worker.ts` kick): the message stays as the fallback until
      // the start commit, which removes it.
      if (
        dispatch.delayMs === 0 && instance.alive && !instance.stopping && this.rng.chance(0.4)
      ) {
        this.#kicks.push({ instance, dispatch });
      }
    }
  }

  async #submit(
    instance: Instance,
    record: ReviewRecord,
    options: { supersede: SupersedeMode; again?: boolean },
  ): Promise<ReviewRecord> {
    const result = await createReview(this.#ctx(instance, this.#ownerOf(record)), record, options);
    this.#apply(instance, result.changes);
    if (result.created) this.#createdSeq.set(record.id, this.#createdSeq.size);
    return result.review;
  }

  // ---------------------------------------------------------------- commit hook: races

  async #beforeCommit(op: SimOp) {
    if (this.#depth > 0 || this.#draining) return;
    if (!this.#faultRng.chance(this.opts.faults.interpose)) return;
    let owner: OwnerModel | undefined;
    let pr: PrModel | undefined;
    for (const [key, value] of op.mutations) {
      if (key[0] === "reviews" && key.length === 2 && typeof value === "object") {
        const review = value as ReviewRecord;
        owner = this.ownersByKey.get(ownerKey(review.owner));
        pr = this.#prOf(review);
        break;
      }
      if (!owner && key[0] === "owners" && key.length === 3) {
        owner = this.ownersByKey.get(`${String(key[1])}:${String(key[2])}`);
      }
    }
    if (!owner) return;
    this.stats.interposed++;
    this.#depth++;
    const saved = this.#actor;
    try {
      await this.#nested(owner, pr);
    } finally {
      this.#actor = saved;
      this.#depth--;
    }
  }

  /**
   * Another actor's step on the same owner (often the same pull request), run inside a commit's
   * read-to-commit window: the commit's checks fail and the code under test must read again.
   */
  async #nested(owner: OwnerModel, pr: PrModel | undefined) {
    this.stats.nested++;
    this.#note("[race:");
    try {
      const kind = this.rng.weighted(
        [
          ["samePr", pr ? 8 : 0],
          ["webhook", 2],
          ["cancel", 2],
          ["message", 3],
          ["attempt", 4],
        ] as const,
      );
      if (kind === "samePr") return await this.#nestedOnPr(pr!);
      if (kind === "webhook") {
        const mine = this.outbox.filter((d) => d.pr.owner === owner);
        if (mine.length) return await this.#deliverWebhook(this.rng.pick(mine));
        const target = this.rng.pick(owner.prs);
        if (!target.open) return;
        this.#push(target);
        return await this.#deliverWebhook(this.outbox.at(-1)!);
      }
      if (kind === "cancel") {
        const open = [...this.mirror.open.get(owner.key) ?? []];
        if (open.length) await this.#cancel(this.rng.pick(open));
        return;
      }
      if (kind === "message") {
        const mine = this.queue.filter((m) => {
          const r = this.mirror.history.get(m.reviewId);
          return m.dueAt <= this.T && r !== undefined && ownerKey(r.owner) === owner.key;
        });
        if (mine.length) await this.#deliverMessage(this.rng.pick(mine));
        return;
      }
      const others = [...this.attempts.values()].filter((a) =>
        a.live && a.owner === owner && a.token !== this.#actor
      );
      if (others.length) await this.#attemptStep(this.rng.pick(others));
    } finally {
      this.#note("]");
    }
  }

  async #nestedOnPr(pr: PrModel) {
    if (!pr.open) {
      this.#reopen(pr);
      return await this.#deliverWebhook(this.outbox.at(-1)!);
    }
    const x = this.rng.next();
    if (x < 0.5) {
      const mine = this.outbox.filter((d) => d.pr === pr);
      if (mine.length) return await this.#deliverWebhook(this.rng.pick(mine));
      this.#push(pr);
      return await this.#deliverWebhook(this.outbox.at(-1)!);
    }
    if (x < 0.7) {
      const open = [...this.mirror.open.get(pr.owner.key) ?? []].filter((id) => {
        const r = this.mirror.reviews.get(id);
        return r !== undefined && r.repo === pr.repo && r.pullNumber === pr.number;
      });
      if (open.length) await this.#cancel(this.rng.pick(open));
      return;
    }
    const others = [...this.attempts.values()].filter((a) =>
      a.live && a.pr === pr && a.token !== this.#actor
    );
    if (others.length) return await this.#attemptStep(this.rng.pick(others));
    this.#push(pr);
    await this.#deliverWebhook(this.outbox.at(-1)!);
  }

  // ---------------------------------------------------------------- GitHub side

  #push(pr: PrModel) {
    pr.headSeq++;
    pr.head = shaOf(pr.index, pr.headSeq);
    pr.updatedAt = this.T;
    this.outbox.push(this.#delivery(pr, "synchronize"));
    this.#prLog(pr, `push head ${pr.head.slice(8, 16)} at ${this.T - T0}`);
    this.#note(`push ${pr.key} → ${pr.head.slice(8, 16)}`);
  }

  #reopen(pr: PrModel) {
    pr.open = true;
    this.#reopenedAt.set(pr, this.step);
    pr.updatedAt = this.T;
    this.outbox.push(this.#delivery(pr, "reopened"));
    this.#prLog(pr, `reopened (head ${pr.head.slice(8, 16)})`);
    this.#note(`reopen ${pr.key}`);
  }

  async #deliverWebhook(delivery: Delivery) {
    const live = this.#live();
    if (!live.length) return;
    const instance = this.rng.pick(live);
    const index = this.outbox.indexOf(delivery);
    // GitHub redelivers some deliveries with the same id later.
    if (index >= 0 && !this.rng.chance(0.1)) this.outbox.splice(index, 1);
    const pr = delivery.pr;
    const owner = pr.owner;
    const body = {
      action: delivery.action,
      number: pr.number,
      pull_request: {
        number: pr.number,
        state: "open",
        draft: false,
        title: `Pull ${pr.number}`,
        // GitHub's `updated_at` has one-second resolution.
        updated_at: new Date(Math.floor(delivery.updatedAt / 1000) * 1000).toISOString(),
        head: { sha: delivery.head },
        base: { sha: BASE_SHA },
      },
      repository: {
        full_name: pr.repo,
        owner: {
          id: Number(owner.id),
          login: owner.login,
          type: owner.type === "org" ? "Organization" : "User",
        },
      },
    };
    const decision = classifyWebhook("pull_request", body);
    if (decision.kind !== "review") throw new Error(`webhook not reviewed: ${decision.kind}`);
    const record = reviewFromPayload(decision.payload, {
      id: `r${++this.#ids}`,
      deliveryId: delivery.id,
      now: this.#local(instance),
    });
    const review = await this.#submit(instance, record, {
      supersede: "newer",
      // `routes/webhooks.ts`: a reopened pull request, or a push (back) to a head, is reviewed
      // again.
      again: delivery.action === "reopened" || delivery.action === "synchronize",
    });
    const what = review.id === record.id ? `created ${review.status}` : `deduped to ${review.id}`;
    this.#prLog(
      pr,
      `webhook ${delivery.id} ${delivery.action} head ${
        delivery.head.slice(8, 16)
      } on ${instance.name}: ${what}`,
    );
    this.#note(`webhook ${delivery.id} ${delivery.action} ${pr.key} → ${record.id} ${what}`);
  }

  async #apiReview(pr: PrModel) {
    const live = this.#live();
    if (!live.length) return;
    const instance = this.rng.pick(live);
    const record: ReviewRecord = {
      id: `api${++this.#ids}`,
      source: "api",
      owner: { type: pr.owner.type, id: pr.owner.id, login: pr.owner.login },
      repo: pr.repo,
      pullNumber: pr.number,
      status: "pending",
      attempts: 0,
      handBacks: 0,
      createdAt: this.#local(instance),
      findingCount: 0,
      skippedEvents: 0,
      sessionInput: { githubRepo: pr.repo, pullNumber: pr.number },
    };
    const review = await this.#submit(instance, record, { supersede: "none" });
    this.#prLog(pr, `api review ${record.id}: ${review.status}`);
    this.#note(`api review ${pr.key} → ${record.id} ${review.status}`);
  }

  // ---------------------------------------------------------------- queue and attempts

  async #deliverMessage(message: Message) {
    const live = this.#live();
    if (!live.length) return;
    const instance = this.rng.pick(live);
    const index = this.queue.indexOf(message);
    // At-least-once: some messages are delivered again later.
    if (index >= 0 && !this.rng.chance(0.08)) this.queue.splice(index, 1);
    this.stats.delivered++;
    // A listener's handler knows no ref: only a same-process start removes a message.
    const { reviewId, token, delayMs } = message;
    await this.#handle(instance, { reviewId, token, delayMs }, "queue");
  }

  /** `queue/worker.ts` handle: start the attempt a message names, if it is still due. */
  async #handle(instance: Instance, message: Dispatch, via: string) {
    const known = this.mirror.history.get(message.reviewId);
    const owner = known ? this.#ownerOf(known) : this.owners[0];
    const started = await startAttempt(this.#ctx(instance, owner), message, {
      instance: instance.name,
      leaseMs: LEASE_MS,
    });
    if (!started) {
      this.stats.stale++;
      this.#note(`${via} ${message.reviewId} on ${instance.name}: no-op`);
      return;
    }
    this.#open(instance, started.review, started.versionstamp);
    this.#note(`${via} ${message.reviewId} on ${instance.name}: started`);
  }

  #open(instance: Instance, review: ReviewRecord, startVersionstamp: string) {
    const owner = this.#ownerOf(review);
    const pr = this.#prOf(review)!;
    const a: Attempt = {
      startVersionstamp,
      token: review.lease!.token,
      reviewId: review.id,
      owner,
      pr,
      instance,
      started: review,
      ready: review.resultStored ? review : undefined,
      expiresAt: review.lease!.expiresAt,
      nextRenew: this.#local(instance) + RENEW_EVERY_MS,
      phase: review.resultStored ? "claim" : "fetch",
      findings: [],
      live: true,
    };
    this.stats.started++;
    this.#sessionTokens.add(a.token);
    this.attempts.set(a.token, a);
    const n = (this.sessions.get(owner.key) ?? 0) + 1;
    this.sessions.set(owner.key, n);
    this.sessionsMax.set(owner.key, Math.max(this.sessionsMax.get(owner.key) ?? 0, n));
    let total = 0;
    for (const v of this.sessions.values()) total += v;
    this.stats.sessionsPeak = Math.max(this.stats.sessionsPeak, total);
    if (n > owner.limit) {
      this.violate(
        1,
        `${owner.key} has ${n} agent sessions open, its limit is ${owner.limit}`,
        review,
      );
    }
  }

  #closeSession(a: Attempt, why: string) {
    if (!a.live) return;
    a.live = false;
    this.attempts.delete(a.token);
    this.sessions.set(a.owner.key, (this.sessions.get(a.owner.key) ?? 0) - 1);
    this.#prLog(a.pr, `${a.reviewId} session on ${a.instance.name} closed: ${why}`);
  }

  /** `review/pipeline.ts` end(): the holder's final commit. */
  async #end(a: Attempt, outcome: Outcome | ((review: ReviewRecord) => Outcome)) {
    const t = await finishAttempt(this.#ctx(a.instance, a.owner), a.reviewId, a.token, outcome);
    if (t) this.#apply(a.instance, t.changes);
  }

  #stopped(a: Attempt) {
    return this.#end(
      a,
      (current) =>
        current.cancelRequested
          ? stopOutcome(current.cancelRequested)
          : { status: "cancelled", terminalReason: "cancelled" },
    );
  }

  /** A claim taken with the result, given back by `publishAndComplete` on an aborted signal. */
  async #giveBackClaim(a: Attempt) {
    if (a.phase !== "claimed") return;
    await releasePublishClaim(this.kv.kv, a.pr.repo, a.pr.number, a.token);
  }

  /**
   * What the lease guard sees on a re-read: a lost lease ends the attempt without a write; a stop
   * request closes the session and ends the review as asked (not once posting has begun:
   * `publishAndComplete` does not look at the signal after its claim).
   */
  async #notice(a: Attempt): Promise<boolean> {
    const review = await getReview(this.kv.kv, a.reviewId);
    if (!a.live) return false;
    if (!holdsLease(review, a.token)) {
      this.#closeSession(a, "lease lost");
      // Posting had begun (or its claim was taken with the result): `publishAndComplete` gives
      // its claim back when its finish fails (or when it finds the signal aborted).
      if (a.phase === "post" || a.phase === "finish" || a.phase === "claimed") {
        await releasePublishClaim(this.kv.kv, a.pr.repo, a.pr.number, a.token);
      }
      return false;
    }
    if (review!.cancelRequested && !posting(a)) {
      this.#closeSession(a, `stop requested (${review!.cancelRequested.reason})`);
      await this.#giveBackClaim(a);
      await this.#stopped(a);
      return false;
    }
    return true;
  }

  /** `review/pipeline.ts` handleFailure for a `ReviewError`. */
  async #failure(a: Attempt, error: ReviewError) {
    this.#closeSession(a, `failed: ${error.message}`);
    const attempts = a.started.attempts;
    if (error.retryable && attempts < attemptLimit(a.started, MAX_ATTEMPTS)) {
      const backoff = RETRY_BASE_DELAY_MS * 2 ** Math.max(0, attempts - 1);
      const delay = Math.min(MAX_RETRY_DELAY_MS, Math.max(backoff, error.retryAfterMs ?? 0));
      const t = await scheduleRetry(
        this.#ctx(a.instance, a.owner),
        a.reviewId,
        a.token,
        error.message,
        delay,
      );
      if (t) this.#apply(a.instance, t.changes);
      return;
    }
    await this.#end(a, {
      status: "failed",
      terminalReason: error.reason,
      errorMessage: error.message,
    });
  }

  /** One step of an attempt, after a re-read of its review. */
  async #attemptStep(a: Attempt): Promise<void> {
    const saved = this.#actor;
    this.#actor = a.token;
    try {
      this.#note(`attempt ${a.reviewId}@${a.instance.name} ${a.phase}`);
      if (!(await this.#notice(a))) return;
      const ctx = () => this.#ctx(a.instance, a.owner);
      switch (a.phase) {
        case "fetch": {
          if (this.rng.chance(0.03)) {
            return await this.#failure(
              a,
              new ReviewError("GitHub answered 502", { retryable: true, reason: "github_error" }),
            );
          }
          // Reviews created after this read may be for a newer push (`review/pipeline.ts`).
          a.snapshot = { head: a.pr.head, open: a.pr.open, readAt: this.#local(a.instance) };
          this.#prLog(
            a.pr,
            `${a.reviewId} read the pull request on ${a.instance.name} at its clock T+${
              a.snapshot.readAt - T0
            }: head ${a.pr.head.slice(8, 16)}, ${a.pr.open ? "open" : "closed"}`,
          );
          a.phase = "act";
          // The pipeline acts on its read at once; often nothing else happens in between.
          if (this.rng.chance(0.5)) return await this.#attemptStep(a);
          return;
        }
        case "act": {
          const snap = a.snapshot!;
          const review = a.started;
          if (review.headSha && snap.head !== review.headSha) {
            this.#closeSession(a, "head moved");
            await this.#end(a, {
              status: "cancelled",
              terminalReason: "superseded",
              errorMessage: `pull request head moved from ${review.headSha} to ${snap.head}`,
            });
            if (review.source === "webhook") {
              const followUp: ReviewRecord = {
                id: `f${++this.#ids}`,
                source: review.source,
                owner: review.owner,
                repo: review.repo,
                pullNumber: review.pullNumber,
                headSha: snap.head,
                baseSha: BASE_SHA,
                title: `Pull ${review.pullNumber}`,
                status: "pending",
                attempts: 0,
                handBacks: 0,
                createdAt: this.#local(a.instance),
                findingCount: 0,
                skippedEvents: 0,
              };
              const stored = await this.#submit(a.instance, followUp, { supersede: "all" });
              this.#prLog(
                a.pr,
                `follow-up ${followUp.id} for ${snap.head.slice(8, 16)}: ${
                  stored.id === followUp.id ? stored.status : `deduped to ${stored.id}`
                }`,
              );
            }
            return;
          }
          if (!snap.open) {
            this.#closeSession(a, "pull request closed");
            await this.#end(a, {
              status: "cancelled",
              terminalReason: "cancelled",
              errorMessage: "pull request is closed",
            });
            return;
          }
          // `confirmHead`: only a review that did not know its head stores it before its session;
          // one created with it reads its record (lease and stop) and writes it with the result.
          const fields = {
            headSha: snap.head,
            baseSha: BASE_SHA,
            title: `Pull ${review.pullNumber}`,
          };
          const current = review.headSha === snap.head
            ? await getReview(this.kv.kv, a.reviewId).then((r) => holdsLease(r, a.token) ? r : null)
            : await updateRunning(this.kv.kv, a.reviewId, a.token, (r) => ({ ...r, ...fields }));
          if (!current) return this.#closeSession(a, "lease lost");
          const withHead = { ...current, ...fields };
          this.#prLog(a.pr, `${a.reviewId} confirmed head ${snap.head.slice(8, 16)}`);
          if (withHead.cancelRequested) {
            this.#closeSession(a, `stop requested (${withHead.cancelRequested.reason})`);
            return await this.#stopped(a);
          }
          this.#apply(
            a.instance,
            await supersedeOthers(ctx(), withHead, a.token, a.startVersionstamp),
          );
          a.phase = "agent";
          return;
        }
        case "agent": {
          const x = this.rng.next();
          if (x < 0.07) {
            return await this.#failure(
              a,
              new ReviewError("agent answered 503", { retryable: true, reason: "agent_error" }),
            );
          }
          if (x < 0.08) {
            return await this.#failure(
              a,
              new ReviewError("agent rejected the diff", {
                retryable: false,
                reason: "agent_error",
              }),
            );
          }
          const n = this.rng.int(4);
          a.findings = Array.from({ length: n }, (_, i) => ({
            severity: "low" as const,
            file_path: `src/f${i}.ts`,
            line_start: i + 1,
            title: `finding ${i}`,
            description: "simulated",
            agent_type: "sim",
          }));
          a.phase = "store";
          return;
        }
        case "store": {
          if (!(await storeFindings(this.kv.kv, a.reviewId, a.token, a.findings))) {
            return this.#closeSession(a, "lease lost");
          }
          // The result's commit takes the publish claim when it is free and no stop was asked.
          let claimed: PullComment | undefined;
          const claimWithResult = async (op: Deno.AtomicOperation, next: ReviewRecord) => {
            claimed = undefined;
            if (next.cancelRequested) return;
            const claim = await claimIn(op, this.kv.kv, next, a.token, {
              now: this.#local(a.instance),
              claimMs: PUBLISH_CLAIM_MS,
              skewMs: SKEW_MS,
              orphanMs: CLAIM_ORPHAN_MS,
            });
            if (claim.kind === "claimed") claimed = claim.pointer;
          };
          const ready = await updateRunning(this.kv.kv, a.reviewId, a.token, (r) => ({
            ...r,
            headSha: a.snapshot!.head,
            baseSha: BASE_SHA,
            title: `Pull ${r.pullNumber}`,
            summary: `summary of ${r.id}`,
            findingCount: a.findings.length,
            skippedEvents: 0,
            resultStored: true,
          }), { also: claimWithResult });
          if (!ready) return this.#closeSession(a, "lease lost");
          a.ready = ready;
          a.pointer = claimed;
          a.phase = claimed ? "claimed" : "claim";
          return;
        }
        case "claimed": {
          // `publishAndComplete` with the claim the result's commit took: the signal (what
          // `#notice` just checked) is looked at once, then posting begins.
          a.phase = "post";
          return;
        }
        case "claim": {
          const claim = await claimPublish(this.kv.kv, a.reviewId, a.token, {
            now: this.#local(a.instance),
            claimMs: PUBLISH_CLAIM_MS,
            skewMs: SKEW_MS,
            orphanMs: CLAIM_ORPHAN_MS,
          });
          if (claim.kind === "lost") return this.#closeSession(a, "lease lost");
          if (claim.kind === "stop_requested") {
            this.#closeSession(a, "stop requested at claim");
            return await this.#stopped(a);
          }
          if (claim.kind === "claimed") {
            a.pointer = claim.pointer;
            a.phase = "post";
          }
          return;
        }
        case "post": {
          const ready = a.ready!;
          try {
            const findings = await getFindings(this.kv.kv, a.reviewId, ready.findingCount);
            const body =
              `${REVIEW_COMMENT_MARKER}\nreview ${a.reviewId} of ${ready.headSha}: ${findings.length} findings`;
            // `publishAndComplete`: posting takes no new step once the claim is nearly used up.
            const left = a.pointer!.claim!.expiresAt - 2 * DEFAULT_GITHUB_TIMEOUT_MS -
              this.#local(a.instance);
            a.comment = await postOnce(
              this.github,
              ready.repo,
              ready.pullNumber,
              body,
              a.pointer!.commentId,
              left > 0 ? new AbortController().signal : AbortSignal.abort(),
            );
            this.#prLog(a.pr, `${a.reviewId} posted comment ${a.comment.id}`);
            a.phase = "finish";
          } catch (error) {
            await releasePublishClaim(this.kv.kv, ready.repo, ready.pullNumber, a.token);
            if (!(error instanceof ReviewError)) throw error;
            await this.#failure(a, error);
          }
          return;
        }
        case "finish": {
          const ready = a.ready!;
          const comment = a.comment!;
          this.#closeSession(a, "published");
          const t = await finishAttempt(ctx(), a.reviewId, a.token, {
            status: "completed",
            terminalReason: "completed",
            patch: { commentId: comment.id, commentUrl: comment.url },
          }, { commentId: comment.id, commentUrl: comment.url });
          if (t) this.#apply(a.instance, t.changes);
          else await releasePublishClaim(this.kv.kv, ready.repo, ready.pullNumber, a.token);
          return;
        }
      }
    } finally {
      this.#actor = saved;
    }
  }

  async #cancel(reviewId: string) {
    const known = this.mirror.history.get(reviewId);
    const owner = known ? this.#ownerOf(known) : this.owners[0];
    const live = this.#live();
    if (!live.length) return;
    const instance = this.rng.pick(live);
    const result = await cancelReview(this.#ctx(instance, owner), reviewId, API_CANCEL_REASON);
    if (result.kind === "cancelled") this.#apply(instance, result.transition.changes);
    if (known) {
      const pr = this.#prOf(known);
      if (pr) this.#prLog(pr, `API cancel ${reviewId} on ${instance.name}: ${result.kind}`);
    }
    this.#note(`cancel ${reviewId}: ${result.kind}`);
  }

  // ---------------------------------------------------------------- time, instances, sweeps

  /** Time passes in steps of at most `CHECK_MS`: lease guards renew and check. */
  async #advance(ms: number) {
    let left = ms;
    while (left > 0) {
      const d = Math.min(left, CHECK_MS);
      left -= d;
      this.T += d;
      for (const a of [...this.attempts.values()]) {
        if (!a.live) continue;
        const now = this.#local(a.instance);
        if (now >= a.nextRenew) {
          a.nextRenew = now + RENEW_EVERY_MS;
          if (this.T >= a.instance.renewFailUntil) {
            const next = now + LEASE_MS;
            const review = await renewLease(this.kv.kv, a.reviewId, a.token, next);
            if (!a.live) continue;
            if (review) a.expiresAt = next;
            if (!holdsLease(review, a.token)) {
              this.#closeSession(a, "lease lost (renewal)");
              continue;
            }
            if (review!.cancelRequested && !posting(a)) {
              this.#closeSession(a, "stop requested (renewal)");
              await this.#giveBackClaim(a);
              await this.#stopped(a);
              continue;
            }
          }
        }
        if (now >= a.expiresAt - CHECK_MS) {
          this.stats.expiries++;
          this.#closeSession(a, "lease not renewed in time");
        }
      }
    }
  }

  #crash(instance: Instance) {
    for (const a of [...this.attempts.values()]) {
      if (a.instance === instance) this.#closeSession(a, "instance crashed");
    }
    instance.alive = false;
    this.stats.crashes++;
    this.#note(`crash ${instance.name}`);
  }

  async #shutdown(instance: Instance) {
    instance.stopping = true;
    for (const a of [...this.attempts.values()]) {
      if (a.instance !== instance || !a.live) continue;
      this.#closeSession(a, "shutdown");
      await this.#giveBackClaim(a);
      const t = await handBack(this.#ctx(instance, a.owner), a.reviewId, a.token, MAX_HAND_BACKS);
      if (t) this.#apply(instance, t.changes);
    }
    instance.alive = false;
    instance.stopping = false;
    this.stats.shutdowns++;
    this.#note(`shutdown ${instance.name}`);
  }

  #revive(instance: Instance) {
    instance.generation++;
    instance.name = `${instance.base}.${instance.generation}`;
    instance.offset = this.rng.range(-SKEW_MS / 2, SKEW_MS / 2);
    instance.alive = true;
    instance.renewFailUntil = 0;
    this.#note(`revive ${instance.name}`);
  }

  /**
   * `queue/sweeper.ts` once(): recover, fill, purge. Limits are per owner here, so each owner's
   * reviews are swept with that owner's limit, through a view that lists only them.
   */
  async #sweep(instance: Instance) {
    const inflight = await Array.fromAsync(this.#kvReal.list<Owner>({ prefix: ["inflight"] }));
    const byOwner = new Map<string, Deno.KvEntry<unknown>[]>();
    for (const e of inflight) {
      const k = ownerKey(e.value);
      let list = byOwner.get(k);
      if (!list) byOwner.set(k, list = []);
      list.push(e);
    }
    const changes: Changes[] = [];
    for (const owner of this.owners) {
      const mine = byOwner.get(owner.key);
      if (!mine) continue;
      const view = new SimKv(
        this.#kvReal,
        this.kv.hooks,
        (sel) => samePrefix(sel, "inflight") ? entriesOf(mine) : undefined,
      );
      changes.push(
        await recoverStalled(this.#ctx(instance, owner, view), {
          maxAttempts: MAX_ATTEMPTS,
          overdueMs: LEASE_MS * 2,
          skewMs: SKEW_MS,
          instance: instance.name,
        }),
      );
    }
    const active = await Array.fromAsync(this.#kvReal.list<Owner>({ prefix: ["owners_active"] }));
    for (const e of active) {
      const owner = this.ownersByKey.get(ownerKey(e.value))!;
      const view = new SimKv(
        this.#kvReal,
        this.kv.hooks,
        (sel) => samePrefix(sel, "owners_active") ? entriesOf([e]) : undefined,
      );
      changes.push(await fillActiveOwners(this.#ctx(instance, owner, view)));
    }
    const merged = mergeChanges(...changes);
    this.#apply(instance, merged);
    let purged = 0;
    if (this.rng.chance(0.3)) {
      purged = await purgeFinished(this.kv.kv, this.#local(instance) - RETENTION_MS, 100);
      this.stats.purged += purged;
    }
    this.#note(
      `sweep on ${instance.name}: ${merged.reviews.length} changed, ${merged.dispatched.length} ` +
        `dispatched, ${purged} purged`,
    );
  }

  // ---------------------------------------------------------------- the scheduler

  #openCount(): number {
    let n = 0;
    for (const set of this.mirror.open.values()) n += set.size;
    return n;
  }

  async #randomStep() {
    const rng = this.rng;
    const live = this.#live();
    const dead = this.instances.filter((i) => !i.alive);
    const open = this.#openCount();
    const kind = rng.weighted<StepKind>([
      ["push", open < 350 ? 2.2 : 0.3],
      ["close", 0.25],
      ["reopen", 0.4],
      ["webhook", this.outbox.length ? 4 : 0],
      ["apiReview", 0.15],
      ["apiBurst", open < 350 ? 0.015 : 0],
      ["message", this.queue.length ? 9 : 0],
      ["attempt", this.attempts.size ? 22 : 0],
      ["notice", this.attempts.size ? 2 : 0],
      ["cancel", 0.5],
      ["advance", 7],
      ["sweep", live.length ? 0.3 : 0],
      ["crash", live.length > 1 ? 0.025 : 0],
      ["shutdown", live.length > 1 ? 0.025 : 0],
      ["revive", dead.length ? 0.5 : 0],
      ["renewFail", 0.05],
      ["deleteComment", 0.02],
    ]);
    switch (kind) {
      case "push": {
        const owner = this.#pickOwner();
        const pr = rng.pick(owner.prs);
        if (!pr.open) return this.#note(`push skipped: ${pr.key} closed`);
        this.#push(pr);
        // A second push within the same second: equal `updated_at`.
        if (rng.chance(0.1)) this.#push(pr);
        // Another triggering action for the same head (a second delivery id).
        if (rng.chance(0.05)) this.outbox.push(this.#delivery(pr, "ready_for_review"));
        return;
      }
      case "close": {
        const pr = rng.pick(this.prs);
        if (!pr.open) return;
        pr.open = false;
        this.#prLog(pr, "closed");
        return this.#note(`close ${pr.key}`);
      }
      case "reopen": {
        const closed = this.prs.filter((p) => !p.open);
        if (closed.length) this.#reopen(rng.pick(closed));
        return;
      }
      case "webhook":
        return await this.#deliverWebhook(rng.pick(this.outbox));
      case "apiReview":
        return await this.#apiReview(rng.pick(this.#pickOwner().prs));
      case "apiBurst": {
        // Many reviews for one owner at once: its limit and its line fill up.
        const owner = rng.pick(this.owners);
        const n = rng.range(3, Math.min(60, owner.limit + 12));
        for (let i = 0; i < n; i++) await this.#apiReview(rng.pick(owner.prs));
        return;
      }
      case "message": {
        for (let i = 0; i < 4; i++) {
          const m = rng.pick(this.queue);
          if (m.dueAt <= this.T) return await this.#deliverMessage(m);
        }
        return this.#note("no due message picked");
      }
      case "attempt":
        return await this.#attemptStep(rng.pick([...this.attempts.values()]));
      case "notice": {
        const a = rng.pick([...this.attempts.values()]);
        this.#note(`notice ${a.reviewId}@${a.instance.name}`);
        await this.#notice(a);
        return;
      }
      case "cancel": {
        const owner = this.#pickOwner();
        const openIds = [...this.mirror.open.get(owner.key) ?? []];
        if (openIds.length && rng.chance(0.8)) return await this.#cancel(rng.pick(openIds));
        const ids = [...this.#createdSeq.keys()];
        if (ids.length) return await this.#cancel(rng.pick(ids));
        return;
      }
      case "advance": {
        const x = rng.next();
        const ms = x < 0.7 ? rng.range(1, 400) : x < 0.97 ? rng.range(400, 3_000) : rng.range(
          5_000,
          45_000,
        );
        this.#note(`advance ${ms} ms`);
        return await this.#advance(ms);
      }
      case "sweep":
        return await this.#sweep(rng.pick(live));
      case "crash":
        return this.#crash(rng.pick(live));
      case "shutdown":
        return await this.#shutdown(rng.pick(live));
      case "revive":
        return this.#revive(rng.pick(dead));
      case "renewFail": {
        const instance = rng.pick(this.instances);
        instance.renewFailUntil = this.T + rng.range(15_000, 80_000);
        return this.#note(
          `renewals fail on ${instance.name} until +${instance.renewFailUntil - this.T}`,
        );
      }
      case "deleteComment": {
        const pr = rng.pick(this.prs);
        if (this.github.deleteComment(pr)) {
          this.#prLog(pr, "a user deleted the review comment");
          this.#note(`delete comment of ${pr.key}`);
        }
        return;
      }
    }
  }

  #pickOwner(): OwnerModel {
    let total = 0;
    for (const o of this.owners) total += o.weight;
    let x = this.rng.next() * total;
    for (const o of this.owners) {
      if (x < o.weight) return o;
      x -= o.weight;
    }
    return this.owners.at(-1)!;
  }

  async #flushKicks() {
    while (this.#kicks.length) {
      const { instance, dispatch } = this.#kicks.shift()!;
      if (!instance.alive || instance.stopping) continue;
      await this.#handle(instance, dispatch, "fast path");
    }
  }

  // ---------------------------------------------------------------- invariants

  /** Invariants 1–3 over the mirror, after every step. */
  checkStep() {
    for (const owner of this.owners) {
      const state = this.mirror.ownerStates.get(owner.key);
      const c = this.mirror.countsOf(owner.key);
      const active = state?.active ?? 0;
      const pending = state?.pending ?? 0;
      const sessions = this.sessions.get(owner.key) ?? 0;
      if (sessions > owner.limit) {
        this.violate(1, `${owner.key} has ${sessions} sessions open, limit ${owner.limit}`);
      }
      if (active > owner.limit) {
        this.violate(1, `${owner.key} counts ${active} active slots, limit ${owner.limit}`);
      }
      if (active !== c.queued + c.running) {
        this.violate(
          3,
          `${owner.key}: active counter ${active} but ${c.queued} queued + ${c.running} running`,
        );
      }
      if (pending !== c.pending) {
        this.violate(3, `${owner.key}: pending counter ${pending} but ${c.pending} pending`);
      }
      const keys = this.mirror.pendingKeys.get(owner.key)?.size ?? 0;
      if (keys !== c.pending) {
        this.violate(3, `${owner.key}: ${keys} pending line entries for ${c.pending} pending`);
      }
      if (active < owner.limit && pending > 0) {
        this.violate(
          3,
          `${owner.key}: ${pending} pending while only ${active} of ${owner.limit} slots are used`,
        );
      }
    }
    let inflight = 0;
    for (const owner of this.owners) {
      const c = this.mirror.countsOf(owner.key);
      inflight += c.queued + c.running;
    }
    if (inflight !== this.mirror.inflight.size) {
      this.violate(3, `${this.mirror.inflight.size} inflight entries for ${inflight} in flight`);
    }
    for (const a of this.attempts.values()) {
      const r = this.mirror.reviews.get(a.reviewId);
      if (!r || isTerminal(r)) {
        this.violate(
          2,
          `review ${a.reviewId} is ${r?.status ?? "gone"} while a session is open`,
          r,
        );
      } else if (!holdsLease(r, a.token)) {
        this.violate(
          1,
          `the open session of ${a.reviewId} on ${a.instance.name} does not hold its lease ` +
            `(${r.status}, lease of ${r.lease?.instance ?? "nobody"})`,
          r,
        );
      }
    }
  }

  /** Compares the mirror with a full read of KV. */
  async crossCheck() {
    const reviews = await Array.fromAsync(this.#kvReal.list<ReviewRecord>({ prefix: ["reviews"] }));
    if (reviews.length !== this.mirror.reviews.size) {
      throw new Error(`mirror holds ${this.mirror.reviews.size} reviews, KV ${reviews.length}`);
    }
    for (const { value } of reviews) {
      const m = this.mirror.reviews.get(value.id);
      if (!m || m.status !== value.status || m.rev !== value.rev) {
        throw new Error(
          `mirror of ${value.id} is ${m?.status}/${m?.rev}, KV ${value.status}/${value.rev}`,
        );
      }
    }
    const inflight = await Array.fromAsync(this.#kvReal.list({ prefix: ["inflight"] }));
    if (inflight.length !== this.mirror.inflight.size) {
      throw new Error(`mirror holds ${this.mirror.inflight.size} inflight, KV ${inflight.length}`);
    }
    const pending = await Array.fromAsync(this.#kvReal.list({ prefix: ["pending"] }));
    let mirrored = 0;
    for (const set of this.mirror.pendingKeys.values()) mirrored += set.size;
    if (pending.length !== mirrored) {
      throw new Error(`mirror holds ${mirrored} pending entries, KV ${pending.length}`);
    }
  }

  // ---------------------------------------------------------------- run, drain, final checks

  async run(): Promise<SimReport> {
    for (this.step = 1; this.step <= this.opts.steps; this.step++) {
      this.#current = "";
      await this.#randomStep();
      await this.#flushKicks();
      this.#recordTrace();
      this.checkStep();
      if (this.step % 10_000 === 0) await this.crossCheck();
    }
    await this.#drain();
    await this.crossCheck();
    this.#finalCheck();
    return this.#report();
  }

  #recordTrace() {
    const line = `#${this.step} T+${this.T - T0} ${this.#current || "(nothing)"}`;
    for (let i = 0; i < line.length; i++) {
      this.#fingerprint = Math.imul(this.#fingerprint ^ line.charCodeAt(i), 16777619) >>> 0;
    }
    this.#trace.push(line);
    if (this.#trace.length > 200) this.#trace.splice(0, 100);
    if (this.opts.trace) console.log(line);
  }

  /** No new work; every instance back; run until nothing is unfinished. */
  async #drain() {
    this.#draining = true;
    for (const instance of this.instances) {
      if (!instance.alive) this.#revive(instance);
      instance.renewFailUntil = 0;
    }
    const limit = 200_000;
    for (let i = 0; i < limit; i++) {
      this.step++;
      this.stats.drain++;
      this.#current = "drain: ";
      const live = this.#live();
      if (this.outbox.length) {
        await this.#deliverWebhook(this.rng.pick(this.outbox));
      } else if (this.attempts.size && this.rng.chance(0.9)) {
        await this.#attemptStep(this.rng.pick([...this.attempts.values()]));
      } else if (this.queue.some((m) => m.dueAt <= this.T) && this.rng.chance(0.9)) {
        const due = this.queue.filter((m) => m.dueAt <= this.T);
        await this.#deliverMessage(this.rng.pick(due));
      } else if (this.#openCount() > 0 || this.attempts.size) {
        await this.#advance(this.rng.range(200, 3_000));
        if (this.rng.chance(0.3)) await this.#sweep(this.rng.pick(live));
      } else {
        break;
      }
      await this.#flushKicks();
      this.#recordTrace();
      this.checkStep();
      if (i === limit - 1) {
        this.violate(6, `the run did not drain: ${this.#openCount()} reviews unfinished`);
      }
    }
  }

  /** Invariant 6 (and 5 once more) after draining. */
  #finalCheck() {
    for (const owner of this.owners) {
      const state = this.mirror.ownerStates.get(owner.key);
      if ((state?.active ?? 0) !== 0 || (state?.pending ?? 0) !== 0) {
        this.violate(6, `${owner.key} ends with counters ${JSON.stringify(state)}`);
      }
      if ((this.sessions.get(owner.key) ?? 0) !== 0) {
        this.violate(6, `${owner.key} ends with ${this.sessions.get(owner.key)} sessions open`);
      }
    }
    if (this.mirror.inflight.size) {
      this.violate(6, `${this.mirror.inflight.size} inflight entries remain`);
    }
    const byHead = new Map<string, ReviewRecord[]>();
    for (const r of this.mirror.history.values()) {
      if (!r.headSha) continue;
      const k = `${r.repo}#${r.pullNumber}@${r.headSha}`;
      let list = byHead.get(k);
      if (!list) byHead.set(k, list = []);
      list.push(r);
    }
    for (const pr of this.prs) {
      if (pr.comments.length > 1) {
        this.violate(5, `${pr.key} ends with ${pr.comments.length} comments`, undefined, pr);
      }
      if (!pr.open) continue;
      // The newest head is reviewed: a review of it ended completed, failed, or cancelled
      // through the API, and (after a reopen) ended after the reopen.
      const reviews = (byHead.get(`${pr.key}@${pr.head}`) ?? []).sort((a, b) =>
        (this.#createdSeq.get(a.id) ?? 0) - (this.#createdSeq.get(b.id) ?? 0)
      );
      const since = this.#reopenedAt.get(pr) ?? 0;
      const reviewed = reviews.some((r) =>
        (r.status === "completed" || r.status === "failed" ||
          (r.status === "cancelled" && r.errorMessage === API_CANCEL_REASON)) &&
        (this.#endedAt.get(r.id) ?? 0) >= since
      );
      if (reviewed) continue;
      const last = reviews.at(-1);
      this.violate(
        6,
        `${pr.key} is open at head ${pr.head}${since ? ` (reopened at step ${since})` : ""} ` +
          "and no review of that head ended completed, failed or cancelled by the API" +
          (last
            ? `; its latest review ${last.id} ended ${last.status} (${last.terminalReason}: ` +
              `${last.errorMessage})`
            : "; no review of it exists"),
        last,
        pr,
      );
    }
  }

  #report(): SimReport {
    const outcomes: Record<string, number> = {};
    for (const r of this.mirror.history.values()) {
      const k = isTerminal(r) ? `${r.status}/${r.terminalReason}` : r.status;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
    let atLimit = 0;
    let peakAtLimit = 0;
    for (const o of this.owners) {
      const max = this.sessionsMax.get(o.key) ?? 0;
      if (max === o.limit) atLimit++;
      peakAtLimit = Math.max(peakAtLimit, max);
    }
    return {
      seed: this.opts.seed,
      steps: this.opts.steps,
      nestedSteps: this.stats.nested,
      drainSteps: this.stats.drain,
      owners: this.owners.length,
      instances: this.instances.length,
      limits: this.owners.map((o) => o.limit),
      prs: this.prs.length,
      reviews: this.mirror.history.size,
      outcomes,
      sessionsPeak: this.stats.sessionsPeak,
      sessionsPeakOwnerAtLimit: peakAtLimit,
      ownersAtLimit: atLimit,
      maxSessionsPerOwner: this.owners.map((o) => [this.sessionsMax.get(o.key) ?? 0, o.limit]),
      commits: this.mirror.commits,
      lockedInjected: this.stats.locked,
      lostInjected: this.stats.lost,
      interposed: this.stats.interposed,
      messagesSent: this.stats.sent,
      messagesDropped: this.stats.dropped,
      deliveries: this.stats.delivered,
      staleDeliveries: this.stats.stale,
      attemptsStarted: this.stats.started,
      leaseExpiries: this.stats.expiries,
      crashes: this.stats.crashes,
      shutdowns: this.stats.shutdowns,
      comments: this.github.stats.created,
      purged: this.stats.purged,
      simMinutes: Math.round((this.T - T0) / 60_000),
      orphanLeases: this.stats.orphanLeases,
      skewedJoins: this.mirror.skewedJoins,
      fingerprint: this.#fingerprint.toString(16).padStart(8, "0"),
      violations: this.violations,
    };
  }
}
