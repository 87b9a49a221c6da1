import assert from "node:assert/strict";
import { acquireAgentSession, openAgentSessions, refill } from "./agent_limits.ts";
import { keys } from "./keys.ts";
import type { ReviewRecord } from "./records.ts";
import { runningReview } from "./testing.ts";

/** A review running under `leaseToken`. */
async function running(kv: Deno.Kv, id: string, leaseToken: string): Promise<void> {
  await kv.set(keys.review(id), runningReview({ id }, leaseToken));
}

Deno.test("refill: a full bucket at first, then rate per minute up to its capacity", () => {
  assert.equal(refill(null, 0, 10), 10);
  assert.equal(refill({ tokens: 0, at: 0 }, 30_000, 10), 5);
  assert.equal(refill({ tokens: 9, at: 0 }, 600_000, 10), 10);
  assert.equal(refill({ tokens: 2, at: 1_000 }, 0, 10), 2, "a clock behind never removes tokens");
});

Deno.test("the rate bucket grants its capacity, then says how long to wait", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    for (let i = 0; i < 3; i++) await running(kv, `r${i}`, `t${i}`);
    const limits = { ratePerMinute: 2 };
    assert.deepEqual(await acquireAgentSession(kv, "r0", "t0", 0, limits), { ok: true });
    assert.deepEqual(await acquireAgentSession(kv, "r1", "t1", 0, limits), { ok: true });
    assert.deepEqual(await acquireAgentSession(kv, "r2", "t2", 0, limits), {
      ok: false,
      why: "rate",
      waitMs: 30_000,
    });
    assert.deepEqual(await acquireAgentSession(kv, "r2", "t2", 30_000, limits), { ok: true });
    assert.equal(await acquireAgentSession(kv, "r2", "stale-lease", 90_000, limits), null);
  } finally {
    kv.close();
  }
});

Deno.test("session slots free themselves when the holder's attempt ends; races take one each", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    for (let i = 0; i < 5; i++) await running(kv, `r${i}`, `t${i}`);
    const limits = { maxConcurrent: 2, concurrencyWaitMs: 50 };
    const grants = await Promise.all(
      [0, 1, 2, 3].map((i) => acquireAgentSession(kv, `r${i}`, `t${i}`, 0, limits)),
    );
    assert.equal(grants.filter((g) => g?.ok).length, 2, JSON.stringify(grants));
    assert.ok(grants.filter((g) => !g?.ok).every((g) => g && !g.ok && g.waitMs === 50));
    assert.equal(await openAgentSessions(kv, 2), 2);
    // A holder's attempt ends (its lease is gone): its slot is free, with no release commit.
    const holder = grants.findIndex((g) => g?.ok);
    const entry = await kv.get<ReviewRecord>(keys.review(`r${holder}`));
    await kv.set(entry.key, { ...entry.value!, status: "completed", lease: undefined });
    assert.equal(await openAgentSessions(kv, 2), 1);
    const grant = await acquireAgentSession(kv, "r4", "t4", 0, limits);
    assert.equal(grant?.ok, true);
    assert.equal(await openAgentSessions(kv, 2), 2);
  } finally {
    kv.close();
  }
});

Deno.test("with no limits set, a session is granted without touching KV", async () => {
  const kv = await Deno.openKv(":memory:");
  kv.close();
  // A closed handle would throw on any access.
  assert.deepEqual(await acquireAgentSession(kv, "r", "t", 0, {}), { ok: true });
});
