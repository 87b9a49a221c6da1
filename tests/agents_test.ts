/**
 * The agent seam through the real service: progress and the event log while a review runs, usage
 * stored and reported, the shared agent limits (rate and concurrency) across owners, an agent's
 * 429 honoured without charging an attempt, and the zero-config local reviewer.
 */
import assert from "node:assert/strict";
import type { ReviewAgent } from "../review/agents/agent.ts";
import { openAgentSessions } from "../kv/agent_limits.ts";
import { DEFAULT_FINDINGS, sseResponse } from "./fakes/agent.ts";
import { EVAL_AND_KEY_DIFF } from "./fakes/github.ts";
import { pullRequestPayload, sha, startHarness, waitFor, withHarness } from "./harness.ts";

const FAST = { PROGRESS_WRITE_MS: "50", FAST_PATH: "true" };

Deno.test("a running review shows its agent's progress; its event log is readable", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  await withHarness("kv-queue", {
    env: FAST,
    script: () =>
      sseResponse([
        { event: "status", data: { message: "reading src/app.ts" } },
        { event: "finding", data: DEFAULT_FINDINGS[0] },
        { event: "status", data: { message: "checking secrets" }, delayMs: 100 },
        { event: "done", data: {} },
      ], { sessionId: "sess-42", holdUntil: gate }),
  }, async (h) => {
    const { body } = await h.openPull(1, 1);
    const id = body.reviewId as string;
    const running = await waitFor("progress on the running review", async () => {
      const r = await h.review(id);
      return r.progress?.message === "checking secrets" ? r : undefined;
    });
    assert.equal(running.status, "running");
    assert.equal(running.sessionId, "sess-42");
    assert.equal(running.findingsSoFar, 1);
    release();
    await h.waitForStatus(id, ["completed"]);
    const log = await h.api("GET", `/reviews/${id}/events`);
    assert.equal(log.status, 200);
    const events = log.body.events as Array<{ type: string; message: string; at: number }>;
    assert.deepEqual(events.map((e) => e.type), [
      "attempt",
      "session",
      "status",
      "finding",
      "status",
      "done",
    ]);
    assert.match(events[0].message, /attempt 1: sse agent/);
    assert.equal(events[3].message, "warning: src/app.ts:2 eval on input");
    assert.ok(events.every((e, i) => i === 0 || e.at >= events[i - 1].at));
    assert.equal((await h.api("GET", "/reviews/nope/events")).status, 404);
    assert.equal((await h.api("GET", `/reviews/${id}/events`, undefined, null)).status, 401);
  });
});

Deno.test("progress writes are bounded: a chatty agent costs a few KV writes, not one per event", async () => {
  let writes = 0;
  const chatty: ReviewAgent = {
    kind: "local",
    async review(_request, { emit }) {
      for (let i = 0; i < 2000; i++) {
        emit({ type: "status", message: `step ${i}` });
        if (i % 200 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      emit({ type: "done" });
    },
  };
  await withHarness("kv-queue", {
    env: { PROGRESS_WRITE_MS: "100" },
    agent: chatty,
    wrapKv: (kv) =>
      new Proxy(kv, {
        get(target, prop) {
          if (prop === "atomic") {
            return () => {
              const op = target.atomic();
              const set = op.set.bind(op);
              op.set = (key, value, options) => {
                if (key[0] === "review_events") writes++;
                return set(key, value, options);
              };
              return op;
            };
          }
          const value = Reflect.get(target, prop, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }),
  }, async (h) => {
    const { body } = await h.openPull(1, 1);
    const done = await h.waitForStatus(body.reviewId as string, ["completed"]);
    assert.equal(done.progress?.message, "step 1999");
    const events = (await h.api("GET", `/reviews/${done.id}/events`)).body.events as unknown[];
    assert.equal(events.length, 60, "the log keeps the last 60 events");
    assert.ok(writes >= 1 && writes <= 10, `${writes} event-log writes for 2000 events`);
  });
});

/** An agent reporting usage in two increments, then one finding. */
const usageAgent: ReviewAgent = {
  kind: "openai",
  review(_request, { emit }) {
    emit({ type: "usage", model: "gpt-test", tokensIn: 1000, tokensOut: 200, cost: 0.01 });
    emit({ type: "usage", tokensIn: 500, tokensOut: 100, cost: 0.005 });
    emit({ type: "finding", finding: DEFAULT_FINDINGS[1] });
    emit({ type: "done" });
    return Promise.resolve();
  },
};

Deno.test("usage is stored on the review and reported to API_URL before the completed status", async () => {
  const received: Array<{ path: string; body: Record<string, unknown>; secret: string | null }> =
    [];
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    received.push({
      path: new URL(req.url).pathname,
      body: await req.json(),
      secret: req.headers.get("x-internal-secret"),
    });
    return Response.json({ ok: true });
  });
  try {
    await withHarness("kv-queue", {
      env: {
        API_URL: `http://127.0.0.1:${backend.addr.port}`,
        INTERNAL_API_SECRET: "internal-secret",
      },
      agent: usageAgent,
    }, async (h) => {
      const { body } = await h.openPull(1, 1);
      const id = body.reviewId as string;
      const done = await h.waitForStatus(id, ["completed"]);
      assert.deepEqual(done.usage, {
        model: "gpt-test",
        tokensIn: 1500,
        tokensOut: 300,
        cost: 0.015,
      });
      await h.service.callbacks.idle(5_000);
      const usage = received.filter((r) => r.path.includes("code-review-usage"));
      assert.deepEqual(usage, [{
        path: `/api/internal/code-review-usage/${id}`,
        body: { model: "gpt-test", totalTokensIn: 1500, totalTokensOut: 300, totalCost: 0.015 },
        secret: "internal-secret",
      }]);
      const order = received.map((r) => r.path.includes("usage") ? "usage" : r.body.status);
      assert.ok(
        order.indexOf("usage") < order.indexOf("completed"),
        `usage before completed: ${order}`,
      );
    });
  } finally {
    await backend.shutdown();
  }
});

Deno.test("an agent's 429 defers the review as retry-after asks, without charging an attempt", async () => {
  await withHarness("kv-table", {
    script: (s) =>
      s.index === 0
        ? new Response("slow down", { status: 429, headers: { "retry-after": "1" } })
        : sseResponse([{ event: "done", data: {} }]),
  }, async (h) => {
    const { body } = await h.openPull(1, 1);
    const done = await h.waitForStatus(body.reviewId as string, ["completed"], 15_000);
    assert.equal(done.attempts, 1);
    assert.equal(done.deferrals, 1);
    const [first, second] = h.agent.sessions;
    assert.ok(second.receivedAt - first.receivedAt >= 950, "retry-after was honoured");
  });
});

Deno.test("AGENT_RATE_PER_MINUTE is shared by owners: waiting reviews keep their slot, then run", async () => {
  let now = Date.now();
  const h = await startHarness({
    transport: "kv-table",
    clock: () => now,
    env: { AGENT_RATE_PER_MINUTE: "2", MAX_CONCURRENT_PER_OWNER: "1", FAST_PATH: "true" },
  });
  try {
    const ids: string[] = [];
    for (const [owner, pr] of [[1, 1], [2, 2], [1, 3], [2, 4], [1, 5]]) {
      now++; // the line is ordered by creation time
      ids.push((await h.openPull(owner, pr)).body.reviewId as string);
    }
    // Two tokens: reviews 1 and 2 run; 3 and 4 then take their owners' slots and must wait.
    const waiting = await waitFor("two deferred reviews", async () => {
      const all = await Promise.all(ids.map((id) => h.review(id)));
      const deferred = all.filter((r) => r.deferrals === 1 && r.status === "queued");
      return deferred.length === 2 ? deferred : undefined;
    });
    assert.deepEqual(waiting.map((r) => r.pullNumber).sort(), [3, 4]);
    for (const r of waiting) {
      assert.equal(r.attempts, 0, "waiting is not an attempt");
      assert.match(r.progress!.message, /AGENT_RATE_PER_MINUTE/);
    }
    assert.equal(h.agent.sessions.length, 2);
    // The waiting review keeps owner 1's only slot: its next review stays in line behind it.
    const owner1 = (await h.api("GET", "/owners/org/1")).body;
    assert.deepEqual([owner1.active, owner1.pending], [1, 1]);
    assert.equal((await h.review(ids[4])).status, "pending");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.agent.sessions.length, 2, "no third session within the minute");
    for (const id of ids) {
      const r = await waitFor(`review ${id} completed`, async () => {
        now += 31_000; // one more token each time round
        h.service.transport.wake?.();
        await new Promise((r) => setTimeout(r, 30));
        const r = await h.review(id);
        return r.status === "completed" ? r : undefined;
      });
      assert.equal(r.attempts, 1);
    }
    assert.equal(h.agent.sessions.length, 5);
  } finally {
    await h.close();
  }
});

Deno.test("MAX_CONCURRENT_TOTAL bounds open sessions across owners; nothing leaks", async () => {
  await withHarness("kv-queue", {
    env: { MAX_CONCURRENT_TOTAL: "2", AGENT_LIMIT_WAIT_MS: "50", FAST_PATH: "true" },
    script: () => sseResponse([{ event: "done", data: {}, delayMs: 150 }]),
  }, async (h) => {
    const ids: string[] = [];
    for (let i = 1; i <= 6; i++) ids.push((await h.openPull(i % 3, i)).body.reviewId as string);
    for (const id of ids) {
      const r = await h.waitForStatus(id, ["completed"], 20_000);
      assert.equal(r.attempts, 1);
    }
    assert.equal(h.agent.maxOpen, 2, "never more than two sessions open");
    assert.equal(h.agent.sessions.length, 6);
    assert.equal(await openAgentSessions(h.kv, 2), 0, "no slot held after the reviews ended");
  });
});

Deno.test("with no AGENT_URL the local reviewer reviews eval and an AWS key with zero config", async () => {
  await withHarness("kv-queue", { env: { AGENT_KIND: "local" } }, async (h) => {
    const diff = EVAL_AND_KEY_DIFF;
    h.github.setPull({ owner: "owner1", repo: "service", number: 5, headSha: sha(5), diff });
    const { body } = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ ownerId: 1, number: 5, headSha: sha(5) }),
    );
    const done = await h.waitForStatus(body.reviewId as string, ["completed"]);
    const findings = done.findings as Array<{ line_start: number; severity: string }>;
    assert.deepEqual(findings.map((f) => [f.line_start, f.severity]).sort(), [
      [2, "critical"],
      [3, "critical"],
    ]);
    assert.equal(h.agent.sessions.length, 0, "no network agent was called");
    const comment = h.github.comments[0];
    assert.match(comment.body, /AKIA/);
    assert.match(comment.body, /eval/);
  });
});
