/**
 * Owners as a whole: their own limits, filling their free slots, and the overview of who has
 * work. Every change goes through {@link OwnerTxn}, so a limit change is one atomic commit that
 * also claims what the new limit frees.
 *
 * @module
 */
import { getManyBatched } from "./batch.ts";
import { type Changes, mergeChanges } from "./changes.ts";
import { retryTransaction, withLockRetry } from "./commit.ts";
import { keys } from "./keys.ts";
import {
  MAX_CLAIMS_PER_COMMIT,
  ownerLimit,
  OwnerTxn,
  readOwner,
  type TxnContext,
} from "./owner_txn.ts";
import type { Owner, OwnerState } from "./records.ts";

type OwnerRef = Pick<Owner, "type" | "id">;

/**
 * Claims an owner's pending reviews while it has free slots, a bounded number per commit and as
 * many commits as its limit needs. Returns what was dispatched.
 *
 * @example
 * ```ts
 * deps.apply(await fillOwner(ctx, { type: "org", id: "1" }));
 * ```
 */
export async function fillOwner(ctx: TxnContext, owner: OwnerRef): Promise<Changes> {
  const changes: Changes[] = [];
  for (let round = 0; round < 100; round++) {
    const filled = await retryTransaction(`fillOwner ${owner.type}:${owner.id}`, async () => {
      const snapshot = await readOwner(ctx.kv, owner, { defaultLimit: ctx.limit });
      const state = snapshot.entry.value;
      if (!state || state.pending === 0 || state.active >= ownerLimit(state, ctx.limit)) {
        return { changes: mergeChanges(), more: false };
      }
      const txn = new OwnerTxn(ctx, state.owner, snapshot);
      if (!(await txn.commit())) return undefined;
      return { changes: txn.changes, more: txn.changes.dispatched.length >= MAX_CLAIMS_PER_COMMIT };
    });
    changes.push(filled.changes);
    if (!filled.more) break;
  }
  return mergeChanges(...changes);
}

/** What {@link setOwnerLimit} wrote. */
export interface OwnerLimitResult {
  state: OwnerState;
  changes: Changes;
}

/**
 * Sets an owner's own limit (`null`: back to `MAX_CONCURRENT_PER_OWNER`) in one commit that also
 * claims waiting reviews the new limit makes room for. Lowering it stops nothing: running reviews
 * finish and new ones wait until the owner is under its limit.
 *
 * @example
 * ```ts
 * const { state, changes } = await setOwnerLimit(ctx, { type: "org", id: "1" }, 8);
 * ```
 */
export async function setOwnerLimit(
  ctx: TxnContext,
  owner: OwnerRef,
  limit: number | null,
): Promise<OwnerLimitResult> {
  const first = await retryTransaction(`setOwnerLimit ${owner.type}:${owner.id}`, async () => {
    const snapshot = await readOwner(ctx.kv, owner, {
      defaultLimit: ctx.limit,
      newLimit: limit ?? ctx.limit,
    });
    const txn = new OwnerTxn(ctx, owner, snapshot);
    txn.setLimit(limit);
    if (limit === null) txn.op.delete(keys.ownerLimit(owner));
    else txn.op.set(keys.ownerLimit(owner), txn.state.owner);
    if (!(await txn.commit())) return undefined;
    return { state: { ...txn.state }, changes: txn.changes };
  });
  // A limit raised by more than one commit can claim: the rest at once, not at the next sweep.
  const rest = first.changes.dispatched.length >= MAX_CLAIMS_PER_COMMIT
    ? await fillOwner(ctx, owner)
    : mergeChanges();
  const state = rest.dispatched.length
    ? (await ctx.kv.get<OwnerState>(keys.owner(owner))).value ?? first.state
    : first.state;
  return { state, changes: mergeChanges(first.changes, rest) };
}

/** One owner in the overview. */
export interface OwnerOverview {
  state: OwnerState;
  /** When the first review of its pending line was created (absent: nobody waits). */
  oldestPendingAt?: number;
}

/** Owners read at most by {@link listOwners}, from each of its two indexes. */
const MAX_OWNERS_SCANNED = 1_000;

/**
 * Owners with reviews pending or in flight, and those with a limit of their own, at most `max`
 * (busiest first), each with the creation time of its oldest pending review. Reads at most
 * 1,000 entries of each index (`owners_active`, `owner_limits`).
 *
 * @example
 * ```ts
 * const owners = await listOwners(kv, 200);
 * ```
 */
export async function listOwners(kv: Deno.Kv, max: number): Promise<OwnerOverview[]> {
  const [active, limited] = await withLockRetry(() =>
    Promise.all(
      [keys.activeOwners(), keys.ownerLimits()].map((prefix) =>
        Array.fromAsync(kv.list<Owner>({ prefix }, { limit: MAX_OWNERS_SCANNED }))
      ),
    )
  );
  const refs = new Map<string, OwnerRef>();
  for (const e of [...active, ...limited]) refs.set(`${e.value.type}:${e.value.id}`, e.value);
  const byKey = new Map<string, OwnerState>();
  for (const s of await getOwnerStates(kv, [...refs.values()])) {
    if (s) byKey.set(`${s.owner.type}:${s.owner.id}`, s);
  }
  const states = [...byKey.values()].sort((a, b) =>
    b.active + b.pending - (a.active + a.pending) ||
    `${a.owner.type}:${a.owner.id}`.localeCompare(`${b.owner.type}:${b.owner.id}`)
  ).slice(0, max);
  const heads = await Promise.all(
    states.map((s) =>
      s.pending > 0
        ? withLockRetry(() =>
          Array.fromAsync(kv.list<string>({ prefix: keys.pendingOf(s.owner) }, { limit: 1 }))
        )
        : Promise.resolve([])
    ),
  );
  return states.map((state, i) => {
    const createdAt = heads[i][0]?.key[3];
    return typeof createdAt === "number" ? { state, oldestPendingAt: createdAt } : { state };
  });
}

/**
 * The counters of several owners (missing ones are `null`), in order.
 *
 * @example
 * ```ts
 * const [a, b] = await getOwnerStates(kv, [ownerA, ownerB]);
 * ```
 */
export async function getOwnerStates(
  kv: Deno.Kv,
  owners: OwnerRef[],
): Promise<Array<OwnerState | null>> {
  const entries = await getManyBatched<OwnerState>(kv, owners.map((o) => keys.owner(o)));
  return entries.map((e) => e.value);
}
