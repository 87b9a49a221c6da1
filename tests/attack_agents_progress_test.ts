/**
 * Attacks on progress, the event log and usage: a hostile agent's giant model name and overflowing
 * usage numbers, 100k status events, huge messages and session ids, events after `done`, and
 * progress writes racing the final commit.
 */
import assert from "node:assert/strict";
import { runningReview } from "../kv/testing.ts";
import { recordProgress } from "../kv/progress.ts";
import type { ReviewRecord } from "../kv/records.ts";
import { kvValueBytes } from "../kv/size.ts";
import type { ReviewAgent } from "../review/agents/agent.ts";
import { DEFAULT_FINDINGS } from "./fakes/agent.ts";
import { chatChunk, startFakeOpenAi } from "./fakes/openai.ts";
import { withHarness } from "./harness.ts";

const sse = (payloads: string[]) =>
  new Response(payloads.map((p) => `data: ${p}\n\n`).join(""), {
    headers: { "content-type": "text/event-stream" },
  });

Deno.test("attack progress: an openai server's giant model name does not fail the review", async () => {
  // One chunk (well under the 256 KiB event bound) naming a 50 000-character model, with a
  // finding and a long summary: a valid answer in every other respect.
  const model = "m".repeat(50_000);
  const finding = JSON.stringify({ ...DEFAULT_FINDINGS[0], severity: "warning" });
  const summary = JSON.stringify({ summary: "s".repeat(19_000) });
  const fake = await startFakeOpenAi(() =>
    sse([
      chatChunk({ content: `${finding}\n${summary}\n` }, { model }),
      chatChunk(null, { model, usage: { prompt_tokens: 10, completion_tokens: 5 } }),
      "[DONE]",
    ])
  );
  try {
    await withHarness("kv-queue", {
      env: { AGENT_KIND: "openai", AGENT_URL: fake.url, PROGRESS_WRITE_MS: "10" },
    }, async (h) => {
      const { body } = await h.openPull(1, 1);
      const done = await h.waitForStatus(body.reviewId as string, ["completed", "failed"]);
      const stored = (await h.kv.get<ReviewRecord>(["reviews", done.id])).value!;
      assert.ok(kvValueBytes(stored) < 65_536);
      assert.equal(done.status, "completed", `${done.terminalReason}: ${done.errorMessage}`);
      assert.ok((done.usage?.model?.length ?? 0) <= 200, "the model name is bounded");
    });
  } finally {
    await fake.close();
  }
});

Deno.test("attack progress: usage totals stay finite numbers when an agent reports huge counts", async () => {
  const agent: ReviewAgent = {
    kind: "openai",
    review(_request, { emit }) {
      emit({ type: "usage", model: "m", tokensIn: 1e308, tokensOut: 1e308, cost: 1e308 });
      emit({ type: "usage", tokensIn: 1e308, tokensOut: 1e308, cost: 1e308 });
      emit({ type: "done" });
      return Promise.resolve();
    },
  };
  await withHarness("kv-queue", { agent }, async (h) => {
    const { body } = await h.openPull(1, 1);
    const done = await h.waitForStatus(body.reviewId as string, ["completed", "failed"]);
    assert.equal(done.status, "completed");
    // Over JSON an Infinity becomes null: the API and the usage report would carry `null`.
    for (const key of ["tokensIn", "tokensOut", "cost"] as const) {
      assert.equal(typeof done.usage?.[key], "number", `usage.${key} is ${done.usage?.[key]}`);
    }
  });
});

Deno.test("attack progress (withstood): 100k status events, megabyte messages and session ids, events after done", async () => {
  const huge = "é".repeat(1_000_000);
  const agent: ReviewAgent = {
    kind: "sse",
    async review(_request, { emit }) {
      emit({ type: "session", sessionId: huge });
      emit({ type: "session", sessionId: "second-id" });
      for (let i = 0; i < 100_000; i++) {
        emit({ type: "status", message: i % 1000 ? `step ${i}` : huge });
        if (i % 10_000 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      emit({ type: "finding", finding: DEFAULT_FINDINGS[0] });
      emit({ type: "usage", model: "m", tokensIn: Number.NaN, tokensOut: -5, cost: Infinity });
      emit({ type: "summary", text: "ok" });
      emit({ type: "done" });
      // After done nothing counts.
      emit({ type: "finding", finding: DEFAULT_FINDINGS[1] });
      emit({ type: "summary", text: "late" });
      emit({ type: "error", message: huge, retryable: false });
    },
  };
  await withHarness("kv-queue", { agent, env: { PROGRESS_WRITE_MS: "20" } }, async (h) => {
    const started = Date.now();
    const { body } = await h.openPull(1, 1);
    const id = body.reviewId as string;
    const done = await h.waitForStatus(id, ["completed", "failed"], 30_000);
    assert.ok(Date.now() - started < 15_000);
    assert.equal(done.status, "completed");
    assert.equal(done.findingCount, 1);
    assert.equal(done.summary, "ok");
    assert.ok(done.sessionId!.length <= 200);
    assert.deepEqual(
      [done.usage?.tokensIn, done.usage?.tokensOut, done.usage?.cost],
      [0, 0, 0],
    );
    const record = (await h.kv.get<ReviewRecord>(["reviews", id])).value!;
    assert.ok(kvValueBytes(record) < 65_536);
    const log = await h.kv.get<{ events: unknown[] }>(["review_events", id]);
    assert.ok(kvValueBytes(log.value) < 65_536, `${kvValueBytes(log.value)} bytes of event log`);
    assert.ok(log.value!.events.length <= 60);
    const events = await h.api("GET", `/reviews/${id}/events`);
    assert.equal(events.status, 200);
    assert.equal((await h.api("GET", `/reviews/${id}/events`, undefined, "wrong")).status, 401);
    assert.equal((await h.api("GET", `/reviews/${id}/events`, undefined, null)).status, 401);
  });
});

Deno.test("attack progress (withstood): progress writes racing the final commit never resurrect or clobber it", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    for (let round = 0; round < 20; round++) {
      const id = `r${round}`;
      const lease = `L${round}`;
      const record = runningReview({ id, owner: { type: "org", id: "1" }, rev: 1 }, lease);
      await kv.set(["reviews", id], record);
      const finish = (async () => {
        const entry = await kv.get<ReviewRecord>(["reviews", id]);
        await new Promise((r) => setTimeout(r, round % 3));
        // A finish retries on conflict, as every transition does.
        let current = entry;
        while (true) {
          const done = { ...current.value!, status: "completed" as const, lease: undefined };
          if ((await kv.atomic().check(current).set(current.key, done).commit()).ok) break;
          current = await kv.get<ReviewRecord>(["reviews", id]);
        }
      })();
      const writes = Array.from(
        { length: 10 },
        (_, i) =>
          recordProgress(kv, id, lease, { progress: { message: `p${i}`, at: i } }, [
            { at: i, type: "status", message: `p${i}` },
          ]),
      );
      await Promise.all([finish, ...writes]);
      const after = (await kv.get<ReviewRecord>(["reviews", id])).value!;
      assert.equal(after.status, "completed");
      assert.equal(after.lease, undefined);
      assert.equal(await recordProgress(kv, id, lease, { findingsSoFar: 9 }, []), null);
      assert.equal((await kv.get<ReviewRecord>(["reviews", id])).value!.findingsSoFar, undefined);
    }
  } finally {
    kv.close();
  }
});
