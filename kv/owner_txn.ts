/**
 * One owner's slots and pending line, changed in one atomic commit. Every operation that frees a
 * slot or adds to the line goes through {@link OwnerTxn}, so "a free slot means an empty line"
 * holds after every commit: the commit that frees a slot also claims the head of the line.
 *
 * @module
 */
import { keys } from "./keys.ts";
import type { Owner, OwnerState, ReviewRecord } from "./records.ts";

/** A queue message to send in the same commit: start an attempt of this review. */
export interface Dispatch {
  reviewId: string;
  /** Must equal the review's `dispatchToken` for the message to start anything. */
  token: string;
  delayMs: number;
}

/** Adds a dispatch message to an atomic operation (the queue port's transport does this). */
export type EnqueueInto = (op: Deno.AtomicOperation, dispatch: Dispatch) => void;

/** What every state-changing KV operation needs besides the KV handle. */
export interface TxnContext {
  kv: Deno.Kv;
  enqueue: EnqueueInto;
  now: number;
  limit: number;
}

interface PendingHead {
  pendingEntry: Deno.KvEntry<string>;
  review: Deno.KvEntry<ReviewRecord>;
}

/** The read half of an owner transaction. */
export interface OwnerSnapshot {
  entry: Deno.KvEntryMaybe<OwnerState>;
  heads: PendingHead[];
}

/**
 * Reads an owner's counters and the first entries of its pending line.
 *
 * @example
 * ```ts
 * const snap = await readOwner(kv, { type: "org", id: "1" }, 4);
 * ```
 */
export async function readOwner(kv: Deno.Kv, owner: Owner, headCount: number) {
  const entry = await kv.get<OwnerState>(keys.owner(owner));
  const heads: PendingHead[] = [];
  if ((entry.value?.pending ?? 0) > 0 && headCount > 0) {
    const pendingEntries = await Array.fromAsync(
      kv.list<string>({ prefix: keys.pendingOf(owner) }, { limit: headCount }),
    );
    const reviews = pendingEntries.length
      ? await kv.getMany<ReviewRecord[]>(pendingEntries.map((p) => keys.review(p.value)))
      : [];
    pendingEntries.forEach((pendingEntry, i) => {
      const review = reviews[i];
      if (review.value) heads.push({ pendingEntry, review: review as Deno.KvEntry<ReviewRecord> });
    });
  }
  return { entry, heads } satisfies OwnerSnapshot;
}

/**
 * Builds one atomic commit over an owner's state. Create it from a fresh {@link readOwner}
 * snapshot, apply changes, then {@link OwnerTxn.commit}; on `false` read again and retry.
 */
export class OwnerTxn {
  readonly op: Deno.AtomicOperation;
  readonly state: OwnerState;
  readonly dispatched: Dispatch[] = [];
  readonly #ctx: TxnContext;
  readonly #snapshot: OwnerSnapshot;
  readonly #removed = new Set<string>();

  constructor(ctx: TxnContext, owner: Owner, snapshot: OwnerSnapshot) {
    this.#ctx = ctx;
    this.#snapshot = snapshot;
    this.op = ctx.kv.atomic().check(snapshot.entry);
    const prev = snapshot.entry.value;
    this.state = {
      owner: { ...owner, login: owner.login ?? prev?.owner.login },
      active: prev?.active ?? 0,
      pending: prev?.pending ?? 0,
    };
  }

  /** Whether a new review may take a slot at once (a slot is free and nobody waits). */
  get canStartNow(): boolean {
    return this.state.active < this.#ctx.limit && this.state.pending === 0;
  }

  /** Writes a review record and keeps its indexes in step with its status. */
  putReview(review: ReviewRecord): void {
    this.op.set(keys.review(review.id), review);
    const inflight = review.status === "queued" || review.status === "running";
    if (inflight) this.op.set(keys.inflight(review.id), review.owner);
    else this.op.delete(keys.inflight(review.id));
    if (
      review.status === "completed" || review.status === "failed" || review.status === "cancelled"
    ) {
      this.op.delete(keys.prActive(review.repo, review.pullNumber, review.id));
    }
  }

  /** Adds a review at the end of the owner's pending line. */
  addPending(review: ReviewRecord): void {
    this.op.set(keys.pending(review.owner, review.createdAt, review.id), review.id);
    this.state.pending++;
  }

  /** Removes a pending review from the line (it was cancelled or superseded). */
  removePending(review: ReviewRecord): void {
    this.op.delete(keys.pending(review.owner, review.createdAt, review.id));
    this.state.pending = Math.max(0, this.state.pending - 1);
    this.#removed.add(review.id);
  }

  /** Frees the slot a queued or running review held. */
  freeSlot(): void {
    this.state.active = Math.max(0, this.state.active - 1);
  }

  /**
   * Moves a review to `queued` with a fresh dispatch token and sends its message in this commit.
   * The caller has already accounted for the slot. Returns the updated record.
   */
  dispatch(review: ReviewRecord, delayMs = 0): ReviewRecord {
    const token = crypto.randomUUID();
    const queued: ReviewRecord = {
      ...review,
      status: "queued",
      queuedAt: review.queuedAt ?? this.#ctx.now,
      dispatchToken: token,
      dueAt: this.#ctx.now + delayMs,
      lease: undefined,
    };
    const dispatch = { reviewId: review.id, token, delayMs };
    this.#ctx.enqueue(this.op, dispatch);
    this.dispatched.push(dispatch);
    this.putReview(queued);
    return queued;
  }

  /** Takes a new slot for a review and dispatches it. */
  takeSlotAndDispatch(review: ReviewRecord): ReviewRecord {
    this.state.active++;
    return this.dispatch(review);
  }

  /** Claims heads of the pending line while slots are free. */
  fillFreeSlots(): void {
    for (const head of this.#snapshot.heads) {
      if (this.state.active >= this.#ctx.limit || this.state.pending === 0) break;
      const review = head.review.value;
      if (this.#removed.has(review.id) || review.status !== "pending") continue;
      this.op.check(head.pendingEntry, head.review).delete(head.pendingEntry.key);
      this.state.pending--;
      this.#removed.add(review.id);
      this.takeSlotAndDispatch(review);
    }
  }

  /** Fills free slots, writes the counters and commits. `false` means: read again and retry. */
  async commit(): Promise<boolean> {
    this.fillFreeSlots();
    this.op.set(keys.owner(this.state.owner), this.state);
    const result = await this.op.commit();
    return result.ok;
  }
}
