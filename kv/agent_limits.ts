/**
 * The agent limits every instance shares: `AGENT_RATE_PER_MINUTE` (sessions started per minute, a
 * token bucket under `["agent_rate"]`) and `MAX_CONCURRENT_TOTAL` (sessions open at once, one
 * entry per session slot under `["agent_sessions", i]`). A slot belongs to an attempt for as long
 * as that attempt holds its review's lease: whatever ends the attempt (finish, retry, hand-back,
 * deferral, an expired lease taken over) frees the slot with it, so no commit has to release it
 * and a crashed instance leaks nothing.
 *
 * @module
 */
import { getManyBatched } from "./batch.ts";
import { retryTransaction } from "./commit.ts";
import { keys } from "./keys.ts";
import type { ReviewRecord } from "./records.ts";
import { holdsLease } from "./transitions.ts";

/** `["agent_rate"]`: tokens left in the bucket at `at`. */
export interface AgentRateState {
  tokens: number;
  at: number;
}

/** `["agent_sessions", i]`: the attempt holding a session slot. */
export interface AgentSessionSlot {
  reviewId: string;
  leaseToken: string;
  at: number;
}

/** The limits to enforce; an absent one is not enforced. */
export interface AgentLimits {
  ratePerMinute?: number;
  maxConcurrent?: number;
  /** How long to wait for a free session slot before asking again. */
  concurrencyWaitMs?: number;
}

/** The answer to an attempt asking to open an agent session. */
export type AgentGrant =
  | { ok: true; slot?: number }
  | { ok: false; why: "rate" | "concurrency"; waitMs: number };

/**
 * Tokens in a bucket of `capacity` refilled at `ratePerMinute`, `elapsed` ms after it held
 * `tokens`.
 *
 * @example
 * ```ts
 * refill({ tokens: 0, at: 0 }, 30_000, 10); // 5
 * ```
 */
export function refill(state: AgentRateState | null, now: number, ratePerMinute: number): number {
  if (!state) return ratePerMinute;
  const elapsed = Math.max(0, now - state.at);
  return Math.min(ratePerMinute, state.tokens + (elapsed * ratePerMinute) / 60_000);
}

/** Session slots `from` … `from + count − 1`, each with its holder's record when it has one. */
async function readSlots(kv: Deno.Kv, from: number, count: number) {
  const slots = await getManyBatched<AgentSessionSlot>(
    kv,
    Array.from({ length: count }, (_, i) => keys.agentSession(from + i)),
  );
  const held = slots.filter((s) => s.value);
  const holders = await getManyBatched<ReviewRecord>(
    kv,
    held.map((s) => keys.review(s.value!.reviewId)),
  );
  return slots.map((entry, i) => {
    const holder = entry.value ? holders[held.indexOf(entry)] : undefined;
    // A slot is taken while its holder's attempt still holds the review's lease.
    const taken = holder !== undefined && holdsLease(holder.value, entry.value!.leaseToken);
    return { slot: from + i, entry, holder, taken };
  });
}

/** The first slot this review may take (free, or its own), with the entries that prove it. */
async function freeSlot(kv: Deno.Kv, limit: number, reviewId: string) {
  for (let from = 0; from < limit; from += 10) {
    const slots = await readSlots(kv, from, Math.min(10, limit - from));
    const free = slots.find((s) => !s.taken || s.entry.value?.reviewId === reviewId);
    if (free) return free;
  }
  return null;
}

/**
 * Asks to open an agent session for the attempt holding `leaseToken`: takes a token from the
 * bucket and a session slot in one commit, or says how long to wait. `null` when the attempt no
 * longer holds its lease. With neither limit set it grants at once without touching KV.
 *
 * @example
 * ```ts
 * const grant = await acquireAgentSession(kv, id, leaseToken, Date.now(), { ratePerMinute: 30 });
 * if (grant && !grant.ok) await deferAttempt(ctx, id, leaseToken, grant.waitMs, "rate limit");
 * ```
 */
export function acquireAgentSession(
  kv: Deno.Kv,
  reviewId: string,
  leaseToken: string,
  now: number,
  limits: AgentLimits,
): Promise<AgentGrant | null> {
  const { ratePerMinute, maxConcurrent } = limits;
  if (!ratePerMinute && !maxConcurrent) return Promise.resolve({ ok: true });
  return retryTransaction(`acquireAgentSession ${reviewId}`, async () => {
    const review = await kv.get<ReviewRecord>(keys.review(reviewId));
    if (!holdsLease(review.value, leaseToken)) return null;
    const op = kv.atomic().check(review);
    if (ratePerMinute) {
      const rate = await kv.get<AgentRateState>(keys.agentRate());
      const tokens = refill(rate.value, now, ratePerMinute);
      if (tokens < 1) {
        return {
          ok: false as const,
          why: "rate" as const,
          waitMs: Math.ceil(((1 - tokens) * 60_000) / ratePerMinute),
        };
      }
      op.check(rate).set(rate.key, { tokens: tokens - 1, at: now } satisfies AgentRateState);
    }
    let slot: number | undefined;
    if (maxConcurrent) {
      const free = await freeSlot(kv, maxConcurrent, reviewId);
      if (!free) {
        const waitMs = limits.concurrencyWaitMs ?? 2_000;
        return { ok: false as const, why: "concurrency" as const, waitMs };
      }
      // The holder's record is checked too: the slot is free only while it stays that way.
      // (Our own record, checked above, is not checked twice.)
      const other = free.holder && free.entry.value?.reviewId !== reviewId;
      op.check(free.entry, ...(other ? [free.holder!] : []));
      op.set(free.entry.key, { reviewId, leaseToken, at: now } satisfies AgentSessionSlot);
      slot = free.slot;
    }
    if (!(await op.commit()).ok) return undefined;
    return slot === undefined ? { ok: true as const } : { ok: true as const, slot };
  });
}

/**
 * How many session slots are held by attempts that still hold their lease (for tests and stats).
 *
 * @example
 * ```ts
 * await openAgentSessions(kv, 8); // 3
 * ```
 */
export async function openAgentSessions(kv: Deno.Kv, limit: number): Promise<number> {
  return (await readSlots(kv, 0, limit)).filter((s) => s.taken).length;
}
