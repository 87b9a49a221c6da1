/**
 * One owner's slots and pending line, changed in one atomic commit. Every operation that frees a
 * slot or adds to the line goes through {@link OwnerTxn}, so "a free slot means an empty line"
 * holds after every commit: the commit that frees a slot also claims the head of the line. The
 * transaction records what it changed ({@link Changes}) for the caller to apply.
 *
 * @module
 */
import { getManyBatched } from "./batch.ts";
import { type Changes, type Dispatch, emptyChanges, type MessageRef } from "./changes.ts";
import { keys } from "./keys.ts";
import { type Owner, type OwnerState, type ReviewRecord, TERMINAL_STATUSES } from "./records.ts";
import { kvValueBytes, MAX_RECORD_BYTES, RecordTooLargeError } from "./size.ts";

export type { Dispatch } from "./changes.ts";

/**
 * Adds a dispatch message to an atomic operation (the queue port's transport does this); returns
 * where the message is kept when the transport can remove it later.
 */
export type EnqueueInto = (op: Deno.AtomicOperation, dispatch: Dispatch) => MessageRef | void;

/** Removes a message sent earlier from within an atomic operation (a no-op where impossible). */
export type DropFrom = (op: Deno.AtomicOperation, ref: MessageRef) => void;

/** What every state-changing KV operation needs besides the KV handle. */
export interface TxnContext {
  kv: Deno.Kv;
  enqueue: EnqueueInto;
  drop: DropFrom;
  now: number;
  limit: number;
}

/**
 * Claims per commit: each costs two checks, and an atomic operation takes at most 100 (measured).
 * A commit that could claim more leaves the rest to the next commit or sweep.
 */
export const MAX_CLAIMS_PER_COMMIT = 16;

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
 * The limit of reviews in flight that applies to an owner: its own, else the default.
 *
 * @example
 * ```ts
 * ownerLimit({ owner, active: 1, pending: 0, limit: 8 }, 4); // 8
 * ```
 */
export function ownerLimit(state: OwnerState | null | undefined, defaultLimit: number): number {
  return state?.limit ?? defaultLimit;
}

/**
 * Reads an owner's counters and as many entries of its pending line as a transaction that may
 * free `extra` slots can claim (see {@link headsToRead}), under `newLimit` (a limit being set),
 * else the owner's own limit, else `defaultLimit`. `entry` is the owner entry when the caller has
 * read it already (in the same `getMany` as its own keys). The line is not read at all when no
 * slot can be free even after `extra` are freed: an owner at its limit (the common case under
 * load) costs one read, and the commit's check on the owner entry catches a slot freed meanwhile.
 *
 * @example
 * ```ts
 * const snap = await readOwner(kv, { type: "org", id: "1" }, { defaultLimit: 4, extra: 1 });
 * ```
 */
export async function readOwner(
  kv: Deno.Kv,
  owner: Pick<Owner, "type" | "id">,
  heads: {
    defaultLimit: number;
    extra?: number;
    newLimit?: number;
    entry?: Deno.KvEntryMaybe<OwnerState>;
  },
): Promise<OwnerSnapshot> {
  const entry = heads.entry ?? await kv.get<OwnerState>(keys.owner(owner));
  const limit = heads.newLimit ?? ownerLimit(entry.value, heads.defaultLimit);
  const free = limit - (entry.value?.active ?? 0) + (heads.extra ?? 0);
  const headCount = free > 0 ? headsToRead(limit, heads.extra) : 0;
  const found: PendingHead[] = [];
  if ((entry.value?.pending ?? 0) > 0 && headCount > 0) {
    const pendingEntries = await Array.fromAsync(
      kv.list<string>({ prefix: keys.pendingOf(owner) }, { limit: headCount }),
    );
    const reviews = await getManyBatched<ReviewRecord>(
      kv,
      pendingEntries.map((p) => keys.review(p.value)),
    );
    pendingEntries.forEach((pendingEntry, i) => {
      const review = reviews[i];
      if (review.value) found.push({ pendingEntry, review: review as Deno.KvEntry<ReviewRecord> });
    });
  }
  return { entry, heads: found };
}

/**
 * How many line heads a transaction that may free `extra` slots should read: as many as it may
 * claim (at most {@link MAX_CLAIMS_PER_COMMIT}), plus `extra`.
 *
 * @example
 * ```ts
 * headsToRead(4, 1); // 5
 * ```
 */
export function headsToRead(limit: number, extra = 0): number {
  return Math.min(limit, MAX_CLAIMS_PER_COMMIT) + extra;
}

/**
 * Builds one atomic commit over an owner's state. Create it from a fresh {@link readOwner}
 * snapshot, apply changes, then {@link OwnerTxn.commit}; on `false` read again and retry.
 */
export class OwnerTxn {
  readonly op: Deno.AtomicOperation;
  readonly state: OwnerState;
  readonly changes: Changes = emptyChanges();
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
      ...(prev?.limit !== undefined ? { limit: prev.limit } : {}),
    };
  }

  /** The limit that applies to this owner (its own, else the default). */
  get limit(): number {
    return ownerLimit(this.state, this.#ctx.limit);
  }

  /** Sets the owner's own limit (`null`: back to the default). */
  setLimit(limit: number | null): void {
    if (limit === null) delete this.state.limit;
    else this.state.limit = limit;
  }

  /** Whether a new review may take a slot at once (a slot is free and nobody waits). */
  get canStartNow(): boolean {
    return this.state.active < this.limit && this.state.pending === 0;
  }

  /**
   * Writes a review record (bumping `rev`) and keeps its indexes in step with its status. Throws
   * {@link RecordTooLargeError} when the record would not fit one KV value.
   */
  putReview(review: ReviewRecord, before: ReviewRecord | null): ReviewRecord {
    const next = { ...review, rev: (before?.rev ?? 0) + 1 };
    const bytes = kvValueBytes(next);
    if (bytes > MAX_RECORD_BYTES) throw new RecordTooLargeError(`review ${review.id}`, bytes);
    this.op.set(keys.review(next.id), next);
    const inflight = next.status === "queued" || next.status === "running";
    if (inflight) this.op.set(keys.inflight(next.id), next.owner);
    else this.op.delete(keys.inflight(next.id));
    if (TERMINAL_STATUSES.includes(next.status)) {
      this.op.delete(keys.prActive(next.repo, next.pullNumber, next.id));
      if (next.finishedAt !== undefined) {
        this.op.set(keys.byFinish(next.finishedAt, next.id), next.id);
      }
    }
    this.changes.reviews.push({ review: next, from: before?.status ?? null });
    return next;
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

  /** Frees the slot a queued review, or the attempt holding a running one, held. */
  freeSlot(): void {
    this.state.active = Math.max(0, this.state.active - 1);
  }

  /**
   * Moves a review to `queued` with a fresh dispatch token and sends its message in this commit.
   * The caller has already accounted for the slot. Returns the written record.
   */
  dispatch(review: ReviewRecord, before: ReviewRecord | null, delayMs = 0): ReviewRecord {
    const token = crypto.randomUUID();
    const dispatch: Dispatch = { reviewId: review.id, token, delayMs };
    const queued = this.putReview({
      ...review,
      status: "queued",
      queuedAt: review.queuedAt ?? this.#ctx.now,
      dispatchToken: token,
      dueAt: this.#ctx.now + delayMs,
      lease: undefined,
    }, before);
    const ref = this.#ctx.enqueue(this.op, dispatch);
    if (ref) dispatch.ref = ref;
    this.changes.dispatched.push({ dispatch, review: queued });
    return queued;
  }

  /** Takes a new slot for a review and dispatches it. */
  takeSlotAndDispatch(review: ReviewRecord, before: ReviewRecord | null): ReviewRecord {
    this.state.active++;
    return this.dispatch(review, before);
  }

  /** Claims heads of the pending line while slots are free (at most a bounded number). */
  fillFreeSlots(): void {
    let claimed = 0;
    for (const head of this.#snapshot.heads) {
      if (this.state.active >= this.limit || this.state.pending === 0) break;
      if (claimed >= MAX_CLAIMS_PER_COMMIT) break;
      const review = head.review.value;
      if (this.#removed.has(review.id) || review.status !== "pending") continue;
      this.op.check(head.pendingEntry, head.review).delete(head.pendingEntry.key);
      this.state.pending--;
      this.#removed.add(review.id);
      this.takeSlotAndDispatch(review, review);
      claimed++;
    }
  }

  /** Fills free slots, writes the counters and commits. `false` means: read again and retry. */
  async commit(): Promise<boolean> {
    this.fillFreeSlots();
    this.op.set(keys.owner(this.state.owner), this.state);
    // The sweeps read only owners with work: an index entry while anything waits or runs.
    if (this.state.active > 0 || this.state.pending > 0) {
      this.op.set(keys.activeOwner(this.state.owner), this.state.owner);
    } else {
      this.op.delete(keys.activeOwner(this.state.owner));
    }
    const result = await this.op.commit();
    return result.ok;
  }
}
