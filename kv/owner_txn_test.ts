/**
 * Property test of the slot bookkeeping: any sequence of creates, starts, finishes, retries,
 * hand-backs, cancels and lease recoveries keeps every owner's counters equal to the reviews they
 * count, never exceeds the limit, and never leaves a slot free while someone waits.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { createReview } from "./ingest.ts";
import { keys } from "./keys.ts";
import { finishAttempt, handBack, scheduleRetry, startAttempt } from "./attempts.ts";
import { cancelReview } from "./cancel.ts";
import { recoverStalled } from "./sweeps.ts";
import type { Dispatch, TxnContext } from "./owner_txn.ts";
import type { OwnerState, ReviewRecord } from "./records.ts";
import { pendingReview } from "./testing.ts";

const LIMIT = 2;
const OWNERS = [{ type: "org", id: "1" }, { type: "user", id: "1" }] as const;

type Command =
  | { op: "create"; owner: number; pr: number; head: number }
  | { op: "start" | "finish" | "retry" | "handBack" | "cancel"; pick: number }
  | { op: "expire" };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    op: fc.constant("create" as const),
    owner: fc.integer({ min: 0, max: 1 }),
    pr: fc.integer({ min: 1, max: 4 }),
    head: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    op: fc.constantFrom("start", "finish", "retry", "handBack", "cancel") as fc.Arbitrary<
      "start" | "finish" | "retry" | "handBack" | "cancel"
    >,
    pick: fc.nat(),
  }),
  fc.record({ op: fc.constant("expire" as const) }),
);

async function allReviews(kv: Deno.Kv): Promise<ReviewRecord[]> {
  const entries = await Array.fromAsync(kv.list<ReviewRecord>({ prefix: ["reviews"] }));
  return entries.map((e) => e.value);
}

async function checkInvariants(kv: Deno.Kv, sent: Dispatch[]) {
  const reviews = await allReviews(kv);
  for (const owner of OWNERS) {
    const mine = reviews.filter((r) => r.owner.type === owner.type && r.owner.id === owner.id);
    const state = (await kv.get<OwnerState>(keys.owner(owner))).value;
    const active = mine.filter((r) => r.status === "queued" || r.status === "running").length;
    const pending = mine.filter((r) => r.status === "pending").length;
    const pendingKeys = await Array.fromAsync(kv.list({ prefix: keys.pendingOf(owner) }));
    assert.equal(state?.active ?? 0, active, "active counter equals queued + running");
    assert.equal(state?.pending ?? 0, pending, "pending counter equals pending reviews");
    assert.equal(pendingKeys.length, pending, "one line entry per pending review");
    assert.ok(active <= LIMIT, "never more than the limit");
    if (active < LIMIT) assert.equal(pending, 0, "a free slot means an empty line");
  }
  const inflight = await Array.fromAsync(kv.list({ prefix: keys.inflightAll() }));
  assert.deepEqual(
    inflight.map((e) => String(e.key[1])).sort(),
    reviews.filter((r) => r.status === "queued" || r.status === "running").map((r) => r.id).sort(),
  );
  for (const r of reviews.filter((r) => r.status === "queued")) {
    assert.ok(
      sent.some((d) => d.reviewId === r.id && d.token === r.dispatchToken),
      "queued has a message",
    );
  }
}

Deno.test("slot bookkeeping holds under any sequence of operations", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(command, { maxLength: 40 }), async (commands) => {
      const kv = await Deno.openKv(":memory:");
      const sent: Dispatch[] = [];
      let now = 1_000;
      const ctx = (): TxnContext => ({
        kv,
        now: now++,
        limit: LIMIT,
        enqueue: (_op, d) => void sent.push(d),
        drop: () => {},
      });
      try {
        let n = 0;
        for (const c of commands) {
          const reviews = await allReviews(kv);
          const pick = <T>(list: T[], i: number) => list.length ? list[i % list.length] : undefined;
          if (c.op === "create") {
            const owner = OWNERS[c.owner];
            await createReview(
              ctx(),
              pendingReview({
                id: `r${n++}`,
                source: "webhook",
                owner: { ...owner },
                repo: `${owner.type}${owner.id}/repo`,
                pullNumber: c.pr,
                headSha: `${c.head}`.repeat(40),
                createdAt: now++,
              }),
              { supersede: "all" },
            );
          } else if (c.op === "expire") {
            now += 1_000_000;
            await recoverStalled(ctx(), {
              maxAttempts: 2,
              overdueMs: 500_000,
              skewMs: 0,
              instance: "sweeper",
            });
          } else if (c.op === "start") {
            const r = pick(reviews.filter((r) => r.status === "queued"), c.pick);
            if (r) {
              await startAttempt(ctx(), { reviewId: r.id, token: r.dispatchToken! }, {
                instance: "t",
                leaseMs: 10_000,
              });
            }
          } else if (c.op === "cancel") {
            const r = pick(reviews, c.pick);
            if (r) await cancelReview(ctx(), r.id, "test");
          } else {
            const r = pick(reviews.filter((r) => r.status === "running"), c.pick);
            if (!r) continue;
            const lease = r.lease!.token;
            if (c.op === "finish") {
              // A holder asked to stop ends the review as asked; others complete.
              await finishAttempt(
                ctx(),
                r.id,
                lease,
                (current) =>
                  current.cancelRequested
                    ? { status: "cancelled", terminalReason: current.cancelRequested.reason }
                    : { status: "completed", terminalReason: "completed" },
              );
            } else if (c.op === "retry") await scheduleRetry(ctx(), r.id, lease, "x", 10);
            else await handBack(ctx(), r.id, lease, 1);
          }
          await checkInvariants(kv, sent);
        }
      } finally {
        kv.close();
      }
    }),
    { numRuns: 150 },
  );
});

Deno.test("a pending line is served first in, first out", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const sent: Dispatch[] = [];
    let now = 1;
    const ctx = (): TxnContext => ({
      kv,
      now: now++,
      limit: 1,
      enqueue: (_o, d) => void sent.push(d),
      drop: () => {},
    });
    const owner = { type: "org" as const, id: "9" };
    for (let i = 0; i < 5; i++) {
      await createReview(
        ctx(),
        pendingReview({
          id: `r${i}`,
          owner,
          pullNumber: i + 1,
          createdAt: now++,
        }),
        { supersede: "none" },
      );
    }
    const order: string[] = [];
    for (let i = 0; i < 5; i++) {
      const d = sent[i];
      order.push(d.reviewId);
      const r = (await startAttempt(ctx(), d, { instance: "t", leaseMs: 1000 }))!.review;
      await finishAttempt(ctx(), r.id, r.lease!.token, {
        status: "completed",
        terminalReason: "completed",
      });
    }
    assert.deepEqual(order, ["r0", "r1", "r2", "r3", "r4"]);
  } finally {
    kv.close();
  }
});

Deno.test("repeated hand-backs end the review as interrupted", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const sent: Dispatch[] = [];
    const ctx = (): TxnContext => ({
      kv,
      now: 1,
      limit: 4,
      enqueue: (_o, d) => void sent.push(d),
      drop: () => {},
    });
    await createReview(ctx(), pendingReview({ id: "r" }), { supersede: "none" });
    let last: ReviewRecord | undefined;
    for (let i = 0; i < 4; i++) {
      const started = await startAttempt(ctx(), sent.at(-1)!, { instance: "t", leaseMs: 1 });
      if (!started) break;
      last = (await handBack(ctx(), "r", started.review.lease!.token, 2))?.review;
    }
    assert.equal(last?.status, "failed");
    assert.equal(last?.terminalReason, "interrupted");
    assert.equal(last?.attempts, 0);
    assert.equal(last?.handBacks, 3);
  } finally {
    kv.close();
  }
});
