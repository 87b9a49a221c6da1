/**
 * The simulation's mirror of what KV holds, built from every applied commit (see `sim_kv.ts`), and
 * the checks that belong to a single commit: a finished review never changes again, a review
 * leaves its owner's pending line only from the head, a review that becomes `queued` has its
 * message in the same commit, and a running review is never taken from a live holder.
 *
 * @module
 */
import type { Dispatch, MessageRef } from "../../kv/changes.ts";
import type { Owner, OwnerState, ReviewRecord } from "../../kv/records.ts";
import { isTerminal } from "../../kv/transitions.ts";
import { type AppliedCommit, DELETED } from "./sim_kv.ts";

/** `${type}:${id}`. */
export function ownerKey(owner: Pick<Owner, "type" | "id">): string {
  return `${owner.type}:${owner.id}`;
}

/** Per-owner counts of unfinished reviews by status. */
export interface StatusCounts {
  pending: number;
  queued: number;
  running: number;
}

/** What the mirror reports to the simulation. */
export interface MirrorListener {
  /** A commit broke one of the numbered invariants. */
  violate(invariant: number, message: string, review?: ReviewRecord): void;
  /** The live attempt holding `leaseToken`, if one is open. */
  liveHolder(leaseToken: string): { instance: string } | undefined;
  /** A message was written by an applied commit. */
  sent(dispatch: Dispatch): void;
  /** A message was removed by an applied commit (a same-process start). */
  dropped(ref: MessageRef): void;
  /** A review changed status. */
  statusChanged(review: ReviewRecord, from: ReviewRecord | undefined): void;
}

function compareLine(a: [number, string], b: [number, string]): number {
  if (a[0] !== b[0]) return a[0] - b[0];
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

/** The mirror of the keys the invariants are about. */
export class Mirror {
  readonly reviews = new Map<string, ReviewRecord>();
  /** Every review ever written, as last written (purge does not remove it here). */
  readonly history = new Map<string, ReviewRecord>();
  readonly ownerStates = new Map<string, OwnerState>();
  readonly counts = new Map<string, StatusCounts>();
  /** Pending reviews per owner (by status): id → createdAt. */
  readonly pendingReviews = new Map<string, Map<string, number>>();
  /** Pending line keys per owner: ids. */
  readonly pendingKeys = new Map<string, Set<string>>();
  /** `["inflight", id]` → owner key. */
  readonly inflight = new Map<string, string>();
  /** Unfinished reviews per owner. */
  readonly open = new Map<string, Set<string>>();
  readonly #listener: MirrorListener;
  commits = 0;
  endings = 0;
  /** Reviews that joined a line ahead of a review claimed in the same commit (clock skew). */
  skewedJoins = 0;

  constructor(listener: MirrorListener) {
    this.#listener = listener;
  }

  countsOf(key: string): StatusCounts {
    let c = this.counts.get(key);
    if (!c) this.counts.set(key, c = { pending: 0, queued: 0, running: 0 });
    return c;
  }

  #mapOf<V>(map: Map<string, V>, key: string, make: () => V): V {
    let v = map.get(key);
    if (v === undefined) map.set(key, v = make());
    return v;
  }

  #count(review: ReviewRecord, delta: number) {
    const key = ownerKey(review.owner);
    const c = this.countsOf(key);
    if (review.status === "pending" || review.status === "queued" || review.status === "running") {
      c[review.status] += delta;
    }
    const line = this.#mapOf(this.pendingReviews, key, () => new Map<string, number>());
    const open = this.#mapOf(this.open, key, () => new Set<string>());
    if (delta > 0) {
      if (review.status === "pending") line.set(review.id, review.createdAt);
      if (!isTerminal(review)) open.add(review.id);
    } else {
      line.delete(review.id);
      open.delete(review.id);
    }
  }

  /** Applies one commit and runs the per-commit checks. */
  apply(commit: AppliedCommit): void {
    this.commits++;
    const claimed: ReviewRecord[] = [];
    const queued: ReviewRecord[] = [];
    const joined = new Set<string>();
    for (const [key, value] of commit.mutations) {
      const kind = key[0];
      if (kind === "reviews" && key.length === 2) {
        this.#review(String(key[1]), value, claimed, queued, joined);
      } else if (kind === "owners" && key.length === 3) {
        const k = `${String(key[1])}:${String(key[2])}`;
        if (value === DELETED) this.ownerStates.delete(k);
        else this.ownerStates.set(k, structuredClone(value as OwnerState));
      } else if (kind === "pending" && key.length === 5) {
        const set = this.#mapOf(
          this.pendingKeys,
          `${String(key[1])}:${String(key[2])}`,
          () => new Set<string>(),
        );
        if (value === DELETED) set.delete(String(key[4]));
        else set.add(String(key[4]));
      } else if (kind === "inflight" && key.length === 2) {
        if (value === DELETED) this.inflight.delete(String(key[1]));
        else this.inflight.set(String(key[1]), ownerKey(value as Owner));
      }
    }
    for (const m of commit.messages) this.#listener.sent(m);
    for (const ref of commit.dropped) this.#listener.dropped(ref);
    for (const r of queued) {
      if (!commit.messages.some((m) => m.reviewId === r.id && m.token === r.dispatchToken)) {
        this.#listener.violate(
          3,
          `review ${r.id} became queued with token ${r.dispatchToken} but its commit sent no ` +
            "message with that token",
          r,
        );
      }
    }
    // FIFO: a claimed review was the head of its owner's line when it was claimed: ahead of every
    // review that waited in the line before this commit and still waits. (A review that joins
    // the line in the commit that claims — createReview claims for the slots its supersedes free,
    // then appends — was not in the line at the claim, even when its createdAt, from another
    // instance's clock, sorts it ahead.)
    for (const r of claimed) {
      const line = this.pendingReviews.get(ownerKey(r.owner));
      if (!line) continue;
      for (const [id, createdAt] of line) {
        if (joined.has(id)) {
          if (compareLine([createdAt, id], [r.createdAt, r.id]) < 0) this.skewedJoins++;
          continue;
        }
        if (compareLine([createdAt, id], [r.createdAt, r.id]) < 0) {
          this.#listener.violate(
            4,
            `review ${r.id} (createdAt ${r.createdAt}) took a slot while ${id} ` +
              `(createdAt ${createdAt}) still waits ahead of it in the line of ${
                ownerKey(r.owner)
              }`,
            r,
          );
        }
      }
    }
  }

  #review(
    id: string,
    value: unknown,
    claimed: ReviewRecord[],
    queued: ReviewRecord[],
    joined: Set<string>,
  ) {
    const prev = this.reviews.get(id);
    if (value === DELETED) {
      if (!prev) return;
      if (!isTerminal(prev)) {
        this.#listener.violate(2, `review ${id} was deleted while ${prev.status}`, prev);
      }
      this.#count(prev, -1);
      this.reviews.delete(id);
      return;
    }
    const next = structuredClone(value as ReviewRecord);
    if (prev && isTerminal(prev)) {
      if (
        next.status !== prev.status || next.terminalReason !== prev.terminalReason ||
        next.finishedAt !== prev.finishedAt
      ) {
        this.#listener.violate(
          2,
          `review ${id} ended as ${prev.status}/${prev.terminalReason} and was written again as ` +
            `${next.status}/${next.terminalReason}`,
          next,
        );
      }
    }
    if (prev?.status === "running" && prev.lease) {
      const holder = this.#listener.liveHolder(prev.lease.token);
      const kept = next.status === "running" && next.lease?.token === prev.lease.token;
      if (holder && !kept) {
        this.#listener.violate(
          1,
          `review ${id} went ${prev.status} → ${next.status} (lease ${
            next.lease?.token.slice(0, 8) ?? "none"
          }) while the attempt of ${holder.instance} still holds its session`,
          next,
        );
      }
    }
    if ((prev === undefined || prev.status === "pending") && next.status === "queued") {
      claimed.push(next);
    }
    if (next.status === "queued" && next.dispatchToken !== prev?.dispatchToken) queued.push(next);
    if (next.status === "pending" && prev?.status !== "pending") joined.add(id);
    if (prev) this.#count(prev, -1);
    this.#count(next, 1);
    if (isTerminal(next) && !(prev && isTerminal(prev))) this.endings++;
    this.reviews.set(id, next);
    this.history.set(id, next);
    if (prev?.status !== next.status) this.#listener.statusChanged(next, prev);
  }
}
