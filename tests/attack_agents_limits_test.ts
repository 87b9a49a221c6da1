/**
 * Attacks on the shared agent limits (`AGENT_RATE_PER_MINUTE`, `MAX_CONCURRENT_TOTAL`) and on
 * deferrals: many attempts on two KV handles racing for the last slot or token, two service
 * instances on one KV, a deferral racing a cancel, and an agent 429 after limit waits.
 */
import assert from "node:assert/strict";
import { runningReview } from "../kv/testing.ts";
import { acquireAgentSession, openAgentSessions } from "../kv/agent_limits.ts";
import type { ReviewRecord } from "../kv/records.ts";
import { sseResponse } from "./fakes/agent.ts";
import { pullRequestPayload, startHarness, waitFor, withHarness } from "./harness.ts";

/** A running review held by `leaseToken` (only what the limits read). */
const running = (id: string, leaseToken: string): ReviewRecord =>
  runningReview({ id, owner: { type: "org", id } }, leaseToken);

async function twoHandles() {
  const dir = await Deno.makeTempDir({ prefix: "attack-limits-" });
  const a = await Deno.openKv(`${dir}/kv.sqlite3`);
  const b = await Deno.openKv(`${dir}/kv.sqlite3`);
  return {
    a,
    b,
    async close() {
      a.close();
      b.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("attack limits (withstood): 12 attempts on two KV handles race for 3 session slots", async () => {
  const kv = await twoHandles();
  try {
    const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
    for (const id of ids) await kv.a.set(["reviews", id], running(id, `L-${id}`));
    const grants = await Promise.all(
      ids.map((id, i) =>
        acquireAgentSession(i % 2 ? kv.a : kv.b, id, `L-${id}`, Date.now(), { maxConcurrent: 3 })
      ),
    );
    const granted = ids.filter((_, i) => grants[i]?.ok);
    assert.equal(granted.length, 3, JSON.stringify(grants));
    assert.equal(new Set(grants.filter((g) => g?.ok).map((g) => g!.ok && g!.slot)).size, 3);
    assert.equal(await openAgentSessions(kv.a, 3), 3);
    // One holder ends: exactly one of the waiting attempts may take its slot.
    const ended = granted[0];
    await kv.a.set(["reviews", ended], { ...running(ended, `L-${ended}`), status: "completed" });
    const waiting = ids.filter((id) => !granted.includes(id));
    const second = await Promise.all(
      waiting.map((id, i) =>
        acquireAgentSession(i % 2 ? kv.a : kv.b, id, `L-${id}`, Date.now(), { maxConcurrent: 3 })
      ),
    );
    assert.equal(second.filter((g) => g?.ok).length, 1);
    assert.equal(await openAgentSessions(kv.b, 3), 3);
    // A stale attempt (lease taken over) gets nothing.
    assert.equal(
      await acquireAgentSession(kv.a, waiting[0], "not-the-lease", Date.now(), {
        maxConcurrent: 3,
      }),
      null,
    );
  } finally {
    await kv.close();
  }
});

Deno.test("attack limits (withstood): 12 attempts on two KV handles race for 4 rate tokens", async () => {
  const kv = await twoHandles();
  try {
    const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
    for (const id of ids) await kv.a.set(["reviews", id], running(id, `L-${id}`));
    const now = Date.now();
    const grants = await Promise.all(
      ids.map((id, i) =>
        acquireAgentSession(i % 2 ? kv.a : kv.b, id, `L-${id}`, now, { ratePerMinute: 4 })
      ),
    );
    assert.equal(grants.filter((g) => g?.ok).length, 4);
    for (const g of grants.filter((g) => g && !g.ok)) {
      assert.ok(g && !g.ok && g.why === "rate" && g.waitMs > 0 && g.waitMs <= 15_000);
    }
  } finally {
    await kv.close();
  }
});

Deno.test("attack limits (withstood): MAX_CONCURRENT_TOTAL holds across two service instances on one KV", async () => {
  const kv = await twoHandles();
  const env = {
    QUEUE_TRANSPORT: "kv-table",
    MAX_CONCURRENT_TOTAL: "2",
    AGENT_LIMIT_WAIT_MS: "30",
    FAST_PATH: "true",
  };
  const one = await startHarness({
    transport: "kv-table",
    env,
    wrapKv: () => kv.a,
    script: () => sseResponse([{ event: "done", data: {}, delayMs: 150 }]),
  });
  const two = await startHarness({
    transport: "kv-table",
    env: { ...env, GITHUB_API_URL: one.github.url, AGENT_URL: one.agent.url },
    wrapKv: () => kv.b,
  });
  try {
    const ids: string[] = [];
    for (let i = 1; i <= 8; i++) {
      const h = i % 2 ? one : two;
      one.github.setPull({
        owner: `owner${i % 4}`,
        repo: "service",
        number: i,
        headSha: `${i}`.repeat(40),
      });
      const { body } = await h.sendWebhook(
        "pull_request",
        pullRequestPayload({
          ownerId: i % 4,
          number: i,
          headSha: `${i}`.repeat(40),
        }),
      );
      ids.push(body.reviewId as string);
    }
    for (const id of ids) {
      const r = await one.waitForStatus(id, ["completed", "failed"], 30_000);
      assert.equal(r.status, "completed");
      assert.equal(r.attempts, 1);
    }
    assert.ok(one.agent.maxOpen <= 2, `${one.agent.maxOpen} sessions open at once`);
    assert.equal(one.agent.sessions.length, 8);
    assert.equal(await openAgentSessions(kv.a, 2), 0);
  } finally {
    await two.close();
    await one.close();
    await kv.close();
  }
});

Deno.test("attack limits (withstood): a cancel of a review deferred for the rate limit ends it and frees the slot", async () => {
  let now = Date.now();
  await withHarness("kv-table", {
    clock: () => now,
    env: { AGENT_RATE_PER_MINUTE: "1", FAST_PATH: "true" },
    script: () => sseResponse([{ event: "done", data: {} }]),
  }, async (h) => {
    const first = (await h.openPull(1, 1)).body.reviewId as string;
    await h.waitForStatus(first, ["completed"]);
    now++;
    const second = (await h.openPull(1, 2)).body.reviewId as string;
    await waitFor("deferred", async () => {
      const r = await h.review(second);
      return r.status === "queued" && r.deferrals === 1 ? r : undefined;
    });
    const cancelled = await h.api("POST", `/reviews/${second}/cancel`, {});
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, "cancelled");
    assert.equal((await h.api("GET", "/owners/org/1")).body.active, 0);
    now += 120_000;
    h.service.transport.wake?.();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await h.review(second)).status, "cancelled");
    assert.equal(h.agent.sessions.length, 1, "the deferred review's message was a no-op");
  });
});

Deno.test("attack limits: waits for a session slot do not use up the agent-429 deferral budget", async () => {
  // Review A holds the only session slot for 2 s; review B waits for it (each look a
  // deferral), then the agent answers B with a 429 and `retry-after: 0`.
  await withHarness("kv-queue", {
    env: {
      MAX_CONCURRENT_TOTAL: "1",
      AGENT_LIMIT_WAIT_MS: "10",
      MAX_RATE_LIMIT_DEFERRALS: "5",
      MAX_ATTEMPTS: "1",
      FAST_PATH: "true",
    },
    script: (s) =>
      s.index === 0
        ? sseResponse([{ comment: "hb", delayMs: 1_000 }, {
          event: "done",
          data: {},
          delayMs: 1_000,
        }])
        : s.index === 1
        ? new Response("slow down", { status: 429, headers: { "retry-after": "0" } })
        : sseResponse([{ event: "done", data: {} }]),
  }, async (h) => {
    const a = (await h.openPull(1, 1)).body.reviewId as string;
    await waitFor("A's session", () => h.agent.sessions.length === 1 || undefined);
    const b = (await h.openPull(2, 2)).body.reviewId as string;
    await h.waitForStatus(a, ["completed"]);
    const done = await h.waitForStatus(b, ["completed", "failed"], 15_000);
    assert.ok((done.deferrals ?? 0) > 5, `B waited ${done.deferrals} times for the slot`);
    assert.equal(
      done.status,
      "completed",
      `the agent's 429 must be honoured, not charged: ${done.errorMessage}`,
    );
    assert.equal(done.attempts, 1);
  });
});
