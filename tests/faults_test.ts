/**
 * Fault injection through the real server: KV commits that fail, or apply and then fail, at the
 * worst moments, and renewals that cannot reach KV while the agent streams.
 */
import assert from "node:assert/strict";
import { keys } from "../kv/keys.ts";
import { sseResponse } from "./fakes/agent.ts";
import { faultyKv } from "./fakes/kv.ts";
import { waitFor, withHarness } from "./harness.ts";

const DONE = ["completed", "failed", "cancelled"];
const isKey = (a: Deno.KvKey, b: Deno.KvKey) => JSON.stringify(a) === JSON.stringify(b);

Deno.test("renewals that fail stop the attempt before its lease runs out; another attempt completes", async () => {
  let faulty!: ReturnType<typeof faultyKv>;
  let breakRenewals = true;
  let closedAt = 0;
  await withHarness("kv-table", {
    env: {
      LEASE_MS: "1500",
      CLOCK_SKEW_MS: "200",
      SWEEP_INTERVAL_MS: "200",
      AGENT_IDLE_TIMEOUT_MS: "10000",
    },
    wrapKv: (kv) => (faulty = faultyKv(kv)).kv,
    script: (s, ctl) => {
      if (s.index > 0) return sseResponse([{ event: "done", data: {} }]);
      ctl.signal.addEventListener("abort", () => closedAt = Date.now());
      return sseResponse([{ comment: "hb", delayMs: 10_000 }, { event: "done", data: {} }]);
    },
  }, async (h) => {
    const id = (await h.openPull(401, 1)).body.reviewId as string;
    await waitFor("the session to open", () => h.agent.open === 1 ? true : undefined);
    const running = await h.review(id);
    // A renewal is a commit that sets only the review: those fail from now on.
    faulty.setFault((set) =>
      breakRenewals && set.length === 1 && isKey(set[0], keys.review(id)) ? "throw" : undefined
    );
    await waitFor("the first session to close", () => closedAt || undefined, 5_000);
    breakRenewals = false;
    assert.ok(
      closedAt < running.lease!.expiresAt,
      `closed ${closedAt - running.lease!.expiresAt} ms after the lease ran out`,
    );
    const done = await h.waitForStatus(id, DONE, 10_000);
    assert.equal(done.status, "completed", done.errorMessage);
    assert.equal(done.attempts, 2);
    assert.equal(h.agent.maxOpenByReview.get(id), 1);
    assert.equal(h.github.comments.length, 1);
  });
});

Deno.test("the commit after a successful comment POST fails: the retry posts nothing new", async () => {
  let faulty!: ReturnType<typeof faultyKv>;
  let failures = 1;
  await withHarness("kv-queue", {
    wrapKv: (kv) => (faulty = faultyKv(kv)).kv,
  }, async (h) => {
    faulty.setFault((set) =>
      failures > 0 && set.some((k) => k[0] === "pr_comments") &&
        set.some((k) => k[0] === "reviews_by_finish")
        ? (failures--, "throw")
        : undefined
    );
    const id = (await h.openPull(402, 1)).body.reviewId as string;
    const done = await h.waitForStatus(id, DONE);
    assert.equal(faulty.faults, 1);
    assert.equal(done.status, "completed", done.errorMessage);
    assert.equal(done.attempts, 2);
    assert.equal(h.agent.sessions.length, 1, "the agent session is not repeated");
    assert.equal(h.github.comments.length, 1);
    assert.equal(h.github.comments[0].updatedCount, 1, "the retry updated the comment it found");
  });
});

Deno.test("a completion commit that applies but answers an error: nothing lost, nothing twice", async () => {
  let faulty!: ReturnType<typeof faultyKv>;
  let failures = 1;
  await withHarness("kv-table", {
    env: { MAX_CONCURRENT_PER_OWNER: "1" },
    wrapKv: (kv) => (faulty = faultyKv(kv)).kv,
  }, async (h) => {
    faulty.setFault((set) =>
      failures > 0 && set.some((k) => k[0] === "reviews_by_finish")
        ? (failures--, "apply-then-throw")
        : undefined
    );
    const a = (await h.openPull(403, 1)).body.reviewId as string;
    const b = (await h.openPull(403, 2)).body.reviewId as string;
    const [ra, rb] = [await h.waitForStatus(a, DONE), await h.waitForStatus(b, DONE)];
    assert.deepEqual([ra.status, rb.status], ["completed", "completed"]);
    assert.deepEqual([ra.attempts, rb.attempts], [1, 1]);
    assert.equal(h.agent.sessions.length, 2);
    assert.equal(h.github.comments.length, 2);
    const usage = await h.api("GET", "/owners/org/403");
    assert.deepEqual([usage.body.active, usage.body.pending], [0, 0]);
  });
});

Deno.test("slow KV commits (200 ms each for claims) keep one session per slot", async () => {
  let faulty!: ReturnType<typeof faultyKv>;
  await withHarness("kv-queue", {
    env: { MAX_CONCURRENT_PER_OWNER: "2" },
    wrapKv: (kv) => (faulty = faultyKv(kv)).kv,
  }, async (h) => {
    faulty.setFault((set) => set.some((k) => k[0] === "inflight") ? { delayMs: 200 } : undefined);
    const ids: string[] = [];
    for (let n = 1; n <= 6; n++) ids.push((await h.openPull(404, n)).body.reviewId as string);
    for (const id of ids) {
      assert.equal((await h.waitForStatus(id, DONE, 20_000)).status, "completed");
    }
    assert.ok((h.agent.maxOpenByRepoOwner.get("owner404") ?? 0) <= 2);
    assert.equal(h.github.comments.length, 6);
  });
});
