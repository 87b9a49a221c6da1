/**
 * Storage of the `kv-table` queue transport: messages are entries under
 * `["queue_due", dueAt, messageId]`, so finding what is due is one bounded range read.
 * Claiming moves a message to `now + visibilityMs` (a lease): if the claimer dies, it is due again.
 *
 * @module
 */
import { withLockRetry } from "./commit.ts";
import { keys } from "./keys.ts";

/**
 * Adds a message to a commit, due at `dueAt`, and touches the wake key watched by listeners.
 * Returns the message's key, for {@link dropTableMessage}.
 *
 * @example
 * ```ts
 * const key = putTableMessage(op, { type: "run_review", reviewId: "r1", token: "t" }, Date.now());
 * ```
 */
export function putTableMessage(
  op: Deno.AtomicOperation,
  message: unknown,
  dueAt: number,
): Deno.KvKey {
  const id = crypto.randomUUID();
  const key = keys.queueDue(dueAt, id);
  op.set(key, message).set(keys.queueWake(), id);
  return key;
}

/**
 * Removes a message in a commit, by the key {@link putTableMessage} returned: a no-op when a
 * listener has claimed it meanwhile (a claim moves it to another key).
 *
 * @example
 * ```ts
 * dropTableMessage(op, key);
 * ```
 */
export function dropTableMessage(op: Deno.AtomicOperation, key: Deno.KvKey): void {
  // Only a message key: a reference from elsewhere must never delete anything else.
  if (key[0] !== keys.queueDueAll()[0] || key.length !== 3) {
    throw new Error(`not a kv-table message key: ${JSON.stringify(key)}`);
  }
  op.delete(key);
}

/** A claimed message: handle it, then {@link deleteTableMessage}. */
export interface ClaimedMessage {
  key: Deno.KvKey;
  message: unknown;
}

/** Whether a message (by its id) is to be left alone by this listener for now. */
export type SkipMessage = (messageId: string) => boolean;

/**
 * Claims up to `limit` messages due at `now`, leaving out those `skip` names; each claim is an
 * atomic check, so two instances never claim the same message at once. Costs O(due messages).
 *
 * @example
 * ```ts
 * const claimed = await claimDueMessages(kv, Date.now(), 30_000, 50);
 * ```
 */
export async function claimDueMessages(
  kv: Deno.Kv,
  now: number,
  visibilityMs: number,
  limit: number,
  skip: SkipMessage = () => false,
): Promise<ClaimedMessage[]> {
  const due = await withLockRetry(() =>
    Array.fromAsync(
      kv.list({ start: keys.queueDueAll(), end: keys.queueDue(now + 1, "") }, { limit }),
    )
  );
  const claimed: ClaimedMessage[] = [];
  for (const entry of due) {
    const id = String(entry.key[2]);
    // Checked at claim time, not at listing: the skip may have begun while the list was read.
    if (skip(id)) continue;
    const leased = keys.queueDue(now + visibilityMs, id);
    const ok = await withLockRetry(() =>
      kv.atomic().check(entry).delete(entry.key).set(leased, entry.value).commit()
    ).then((r) => r.ok, () => false);
    if (ok) claimed.push({ key: leased, message: entry.value });
  }
  return claimed;
}

/**
 * Deletes a handled message.
 *
 * @example
 * ```ts
 * await deleteTableMessage(kv, claimed.key);
 * ```
 */
export async function deleteTableMessage(kv: Deno.Kv, key: Deno.KvKey): Promise<void> {
  await withLockRetry(() => kv.delete(key));
}

/**
 * Puts a claimed message back, due at `dueAt`, when its handler failed (sooner than waiting for
 * its visibility lease to end).
 *
 * @example
 * ```ts
 * await releaseTableMessage(kv, claimed, Date.now() + 1_000);
 * ```
 */
export async function releaseTableMessage(
  kv: Deno.Kv,
  claimed: ClaimedMessage,
  dueAt: number,
): Promise<void> {
  const id = String(claimed.key[2]);
  await withLockRetry(() =>
    kv.atomic().delete(claimed.key).set(keys.queueDue(dueAt, id), claimed.message).commit()
  );
}

/**
 * When the earliest message is due, or `null` when the table is empty; messages `skip` names
 * (at most `skipped` of them) are passed over.
 *
 * @example
 * ```ts
 * const next = await nextDueAt(kv);
 * ```
 */
export async function nextDueAt(
  kv: Deno.Kv,
  skip: SkipMessage = () => false,
  skipped = 0,
): Promise<number | null> {
  const entries = await withLockRetry(() =>
    Array.fromAsync(kv.list({ prefix: keys.queueDueAll() }, { limit: skipped + 1 }))
  );
  const first = entries.find((e) => !skip(String(e.key[2])));
  return first ? Number(first.key[1]) : null;
}

/**
 * Watches the wake key: the stream yields whenever a message is added (same process locally; any
 * instance on Deno Deploy).
 *
 * @example
 * ```ts
 * for await (const _ of watchWake(kv)) wakeUp();
 * ```
 */
export function watchWake(kv: Deno.Kv): ReadableStream<unknown> {
  return kv.watch([keys.queueWake()]);
}
