/**
 * Deno KV's limits on every path: `getMany` (10 keys), checks per atomic operation (100), value
 * size as KV measures it, and the fences and sweeps that must hold at 40 and 100+ items.
 */
import assert from "node:assert/strict";
import { finishAttempt, startAttempt, storeFindings } from "./attempts.ts";
import { cancelReview } from "./cancel.ts";
import type { Dispatch } from "./changes.ts";
import { createReview } from "./ingest.ts";
import { keys } from "./keys.ts";
import type { TxnContext } from "./owner_txn.ts";
import type { Finding, OwnerState, ReviewRecord } from "./records.ts";
import { kvValueBytes, MAX_RECORD_BYTES } from "./size.ts";
import { pendingReview } from "./testing.ts";
import { fillActiveOwners, purgeFinished, recoverStalled } from "./sweeps.ts";

const owner = { type: "org" as const, id: "1" };

const finding: Finding = {
  severity: "info",
  file_path: "a",
  line_start: 1,
  title: "t",
  description: "d",
  agent_type: "x",
};

const review = (id: string, over: Partial<ReviewRecord> = {}) =>
  pendingReview({ id, owner, ...over });

async function withKv(fn: (kv: Deno.Kv, ctx: (limit: number) => TxnContext) => Promise<void>) {
  const kv = await Deno.openKv(":memory:");
  let now = 1_000;
  const ctx = (limit: number): TxnContext => ({
    kv,
    now: now++,
    limit,
    enqueue: (_op, _d: Dispatch) => {},
    drop: () => {},
  });
  try {
    await fn(kv, ctx);
  } finally {
    kv.close();
  }
}

const ownerState = async (kv: Deno.Kv) => (await kv.get<OwnerState>(keys.owner(owner))).value!;

for (const limit of [1, 10, 11, 40]) {
  Deno.test(`limit ${limit}: 120 reviews of one pull request drain through create, finish, supersede`, () =>
    withKv(async (kv, ctx) => {
      for (let i = 0; i < 120; i++) {
        await createReview(
          ctx(limit),
          review(`r${i}`, { createdAt: i, headSha: `${i}`.padStart(40, "0") }),
          {
            supersede: "none",
          },
        );
      }
      assert.deepEqual(
        [(await ownerState(kv)).active, (await ownerState(kv)).pending],
        [limit, 120 - limit],
      );
      // A push of another head supersedes all 120 (running ones are asked to stop).
      const push = await createReview(
        ctx(limit),
        review("push", { createdAt: 500, headSha: "b".repeat(40), source: "webhook" }),
        { supersede: "all" },
      );
      assert.equal(push.created, true);
      const records = (await Array.fromAsync(kv.list<ReviewRecord>({ prefix: ["reviews"] })))
        .map((e) => e.value);
      const superseded = records.filter((r) => r.terminalReason === "superseded").length;
      assert.equal(superseded, 120, "queued and pending ones ended at once");
      assert.equal((await ownerState(kv)).pending, 0);
      assert.ok((await ownerState(kv)).active <= limit);
    }));
}

Deno.test("a raised limit of 40 with 100 waiting is filled by one sweep (bounded claims per commit)", () =>
  withKv(async (kv, ctx) => {
    for (let i = 0; i < 100; i++) {
      await createReview(ctx(1), review(`r${i}`, { pullNumber: i + 1, createdAt: i }), {
        supersede: "none",
      });
    }
    const changes = await fillActiveOwners(ctx(40));
    assert.equal(changes.dispatched.length, 39);
    assert.deepEqual([(await ownerState(kv)).active, (await ownerState(kv)).pending], [40, 60]);
  }));

Deno.test("a record that fits queued but not running fails and frees its slot for the next", () =>
  withKv(async (kv, ctx) => {
    const sent: Dispatch[] = [];
    const c = (): TxnContext => ({ ...ctx(1), enqueue: (_o, d) => void sent.push(d) });
    await createReview(c(), review("big"), { supersede: "none" });
    await createReview(c(), review("next", { pullNumber: 2, createdAt: 2 }), { supersede: "none" });
    // Grow the queued record to just under the bound: it fits queued, not with a lease added.
    const queued = (await kv.get<ReviewRecord>(keys.review("big"))).value!;
    const pad = MAX_RECORD_BYTES - 50 - kvValueBytes({ ...queued, prompt: "" });
    await kv.set(keys.review("big"), { ...queued, prompt: "p".repeat(pad) });
    const started = await startAttempt(c(), sent[0], {
      instance: "i".repeat(200),
      leaseMs: 1_000_000,
    });
    assert.equal(started, null);
    const failed = (await kv.get<ReviewRecord>(keys.review("big"))).value!;
    assert.equal(failed.status, "failed");
    assert.equal(failed.terminalReason, "internal_error");
    assert.match(failed.errorMessage!, /bytes as Deno KV stores it/);
    assert.equal(failed.prompt, undefined);
    const next = (await kv.get<ReviewRecord>(keys.review("next"))).value!;
    assert.equal(next.status, "queued");
    assert.deepEqual([(await ownerState(kv)).active, (await ownerState(kv)).pending], [1, 0]);
  }));

Deno.test("findings are written only under the attempt's lease", () =>
  withKv(async (kv, ctx) => {
    const sent: Dispatch[] = [];
    const c = (): TxnContext => ({ ...ctx(4), enqueue: (_o, d) => void sent.push(d) });
    await createReview(c(), review("r"), { supersede: "none" });
    const started = (await startAttempt(c(), sent[0], { instance: "i", leaseMs: 10 }))!.review;
    assert.equal(await storeFindings(kv, "r", "stale-token", [finding]), false);
    assert.deepEqual(await Array.fromAsync(kv.list({ prefix: keys.findingsOf("r") })), []);
    assert.equal(await storeFindings(kv, "r", started.lease!.token, [finding, finding]), true);
    assert.equal((await Array.fromAsync(kv.list({ prefix: keys.findingsOf("r") }))).length, 2);
  }));

Deno.test("a clock a few seconds ahead does not take over a live lease; a cancel waits for the holder", () =>
  withKv(async (kv, ctx) => {
    const sent: Dispatch[] = [];
    let now = 10_000;
    const c = (): TxnContext => ({ ...ctx(1), now, enqueue: (_o, d) => void sent.push(d) });
    await createReview(c(), review("r"), { supersede: "none" });
    await createReview(c(), review("r2", { pullNumber: 2, createdAt: 2 }), { supersede: "none" });
    const started = (await startAttempt(c(), sent[0], { instance: "a", leaseMs: 30_000 }))!.review;
    const options = { maxAttempts: 3, overdueMs: 60_000, skewMs: 5_000, instance: "b" };
    now = started.lease!.expiresAt + 3_000; // b's clock runs 3 s ahead
    assert.equal((await recoverStalled(c(), options)).reviews.length, 0);
    const cancel = await cancelReview(c(), "r", "stop");
    assert.equal(cancel.kind, "cancelled");
    const marked = (await kv.get<ReviewRecord>(keys.review("r"))).value!;
    assert.equal(marked.status, "running", "the slot is still the holder's");
    assert.equal((await ownerState(kv)).active, 1);
    assert.equal((await kv.get<ReviewRecord>(keys.review("r2"))).value!.status, "pending");
    // The holder closes its session and ends it: the slot moves on in that commit.
    const t = await finishAttempt(c(), "r", started.lease!.token, (r) => ({
      status: "cancelled",
      terminalReason: r.cancelRequested!.reason,
    }));
    assert.equal(t!.review.status, "cancelled");
    assert.equal(t!.changes.dispatched[0].dispatch.reviewId, "r2");
    // Had the holder died instead, its expired lease (past the skew) ends the review as cancelled.
  }));

Deno.test("retention removes old finished reviews with findings and indexes, in bounded batches", () =>
  withKv(async (kv, ctx) => {
    const sent: Dispatch[] = [];
    const c = (): TxnContext => ({ ...ctx(40), enqueue: (_o, d) => void sent.push(d) });
    for (let i = 0; i < 30; i++) {
      await createReview(
        c(),
        review(`r${i}`, { pullNumber: i + 1, createdAt: i, headSha: `${i}` }),
        {
          supersede: "none",
        },
      );
    }
    for (const d of [...sent]) {
      const s = (await startAttempt(c(), d, { instance: "i", leaseMs: 1_000 }))!.review;
      await storeFindings(kv, s.id, s.lease!.token, Array(120).fill(finding));
      await finishAttempt(c(), s.id, s.lease!.token, {
        status: "completed",
        terminalReason: "completed",
      });
    }
    assert.equal(await purgeFinished(kv, 0, 10), 0, "nothing is older than the cutoff");
    assert.equal(await purgeFinished(kv, Number.MAX_SAFE_INTEGER, 10), 10);
    assert.equal(await purgeFinished(kv, Number.MAX_SAFE_INTEGER, 100), 20);
    for (
      const prefix of [
        ["reviews"],
        ["findings"],
        ["reviews_by_time"],
        ["reviews_by_owner"],
        ["reviews_by_owner_id"],
        ["reviews_by_head"],
        ["reviews_by_finish"],
        ["inflight"],
        ["owners_active"],
      ]
    ) {
      assert.deepEqual(await Array.fromAsync(kv.list({ prefix })), [], prefix.join());
    }
  }));

Deno.test("a sweep reads owners with work, not every owner ever seen", () =>
  withKv(async (kv, ctx) => {
    // 5,000 owners seen once and idle now.
    for (let i = 0; i < 5_000; i += 500) {
      const op = kv.atomic();
      for (let j = i; j < i + 500; j++) {
        op.set(keys.owner({ type: "user", id: `${j}` }), {
          owner: { type: "user", id: `${j}` },
          active: 0,
          pending: 0,
        });
      }
      await op.commit();
    }
    await createReview(ctx(1), review("a"), { supersede: "none" });
    await createReview(ctx(1), review("b", { pullNumber: 2, createdAt: 2 }), { supersede: "none" });
    let read = 0;
    const counting = new Proxy(kv, {
      get(target, prop) {
        if (prop === "list") {
          return (...args: Parameters<Deno.Kv["list"]>) => {
            const iter = target.list(...args);
            return (async function* () {
              for await (const e of iter) {
                read++;
                yield e;
              }
            })();
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const c = { ...ctx(1), kv: counting };
    await recoverStalled(c, { maxAttempts: 3, overdueMs: 1e9, skewMs: 0, instance: "i" });
    await fillActiveOwners(c);
    assert.ok(read <= 5, `read ${read} entries`);
  }));
