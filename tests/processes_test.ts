/**
 * Several service processes on one KV file, through the real server: the slot limit holds across
 * processes, every review completes once, a killed process's reviews finish on the other, and a
 * SIGINT-ed process hands its reviews back within seconds. Run with both transports.
 */
import assert from "node:assert/strict";
import { type AgentScript, sseResponse, startFakeAgent } from "./fakes/agent.ts";
import { startFakeGitHub } from "./fakes/github.ts";
import {
  BACKEND_TOKEN,
  pullRequestPayload,
  sha,
  TRANSPORTS,
  waitFor,
  WEBHOOK_SECRET,
} from "./harness.ts";
import { getJson, postWebhook, type ServiceProcess, spawnService } from "./process.ts";

/** Holds each session `holdMs` (with heartbeats), then one finding and `done`. */
function slowReview(holdMs: number): AgentScript {
  return () =>
    sseResponse([
      { comment: "hb", delayMs: holdMs / 2 },
      { comment: "hb", delayMs: holdMs / 2 },
      {
        event: "finding",
        data: {
          severity: "info",
          file_path: "src/app.ts",
          line_number: 1,
          title: "note",
          description: "d",
          agent_type: "style",
        },
      },
      { event: "done", data: {} },
    ]);
}

async function setup(transport: string, holdMs: number, extraEnv: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "reviews-kv-" });
  const github = await startFakeGitHub();
  const agent = await startFakeAgent(slowReview(holdMs));
  const env = {
    KV_PATH: `${dir}/kv.sqlite3`,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
    GITHUB_TOKEN: "t",
    GITHUB_API_URL: github.url,
    AGENT_URL: agent.url,
    AGENT_TOKEN: "a",
    BACKEND_AUTH_TOKEN: BACKEND_TOKEN,
    QUEUE_TRANSPORT: transport,
    QUEUE_POLL_MS: "100",
    LEASE_MS: "1500",
    SWEEP_INTERVAL_MS: "300",
    RETRY_BASE_DELAY_MS: "50",
    AGENT_IDLE_TIMEOUT_MS: "5000",
    ...extraEnv,
  };
  const processes: ServiceProcess[] = [];
  return {
    github,
    agent,
    env,
    processes,
    async spawn(options?: { viaTask?: boolean }) {
      const p = await spawnService(env, options);
      processes.push(p);
      return p;
    },
    async close() {
      await Promise.all(processes.map((p) => p.stop("SIGKILL")));
      await agent.close();
      await github.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function sendPull(
  url: string,
  github: Awaited<ReturnType<typeof startFakeGitHub>>,
  ownerId: number,
  number: number,
  headSha = sha(number),
): Promise<string> {
  github.setPull({ owner: `owner${ownerId}`, repo: "service", number, headSha });
  const action = headSha === sha(number) ? "opened" : "synchronize";
  const res = await postWebhook(url, pullRequestPayload({ action, ownerId, number, headSha }));
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.reviewId as string;
}

async function allDone(url: string, ids: string[], timeoutMs: number) {
  return await waitFor(`${ids.length} reviews to finish`, async () => {
    const reviews = await Promise.all(ids.map((id) => getJson(url, `/reviews/${id}`)));
    return reviews.every((r) => ["completed", "failed", "cancelled"].includes(r.status))
      ? reviews
      : undefined;
  }, timeoutMs);
}

for (const transport of TRANSPORTS) {
  Deno.test({
    name: `[${transport}] two processes on one KV file: 40 reviews for 3 owners, then kill -9`,
    async fn() {
      const env = await setup(transport, 300);
      try {
        const [a, b] = [await env.spawn(), await env.spawn()];
        const ids: string[] = [];
        for (let i = 0; i < 40; i++) {
          const target = i % 2 === 0 ? a : b;
          ids.push(await sendPull(target.url, env.github, 1000 + (i % 3), 100 + i));
        }
        const reviews = await allDone(a.url, ids, 60_000);
        assert.deepEqual(reviews.filter((r) => r.status !== "completed"), []);
        for (const owner of [1000, 1001, 1002]) {
          assert.ok((env.agent.maxOpenByRepoOwner.get(`owner${owner}`) ?? 0) <= 4);
        }
        const duplicates = [...env.agent.maxOpenByReview.values()].filter((n) => n > 1).length;
        assert.equal(duplicates, 0);
        assert.equal(env.agent.sessions.length, 40);
        assert.equal(env.github.comments.length, 40);
        console.log(
          `[${transport}] 40 reviews: max per owner ${
            JSON.stringify(Object.fromEntries(env.agent.maxOpenByRepoOwner))
          }, sessions ${env.agent.sessions.length}, duplicates ${duplicates}`,
        );

        // kill -9 one process while it streams agent sessions.
        env.agent.setScript(slowReview(2_000));
        const more: string[] = [];
        for (let i = 0; i < 12; i++) {
          more.push(await sendPull(a.url, env.github, 1000 + (i % 3), 200 + i));
        }
        const runningOnA = await waitFor("sessions running on process A", async () => {
          const rs = await Promise.all(more.map((id) => getJson(b.url, `/reviews/${id}`)));
          const onA = rs.filter((r) =>
            r.status === "running" && String(r.lease?.instance).includes(`-${a.pid}-`)
          );
          return onA.length >= 3 ? onA.length : undefined;
        }, 10_000);
        await a.stop("SIGKILL");
        const finished = await allDone(b.url, more, 60_000);
        assert.deepEqual(finished.filter((r) => r.status !== "completed"), []);
        const recovered = finished.filter((r) => r.attempts > 1).length;
        assert.ok(recovered >= 1, `recovered ${recovered} of ${runningOnA} running on A`);
        for (const owner of [1000, 1001, 1002]) {
          const usage = await getJson(b.url, `/owners/org/${owner}`);
          assert.deepEqual([usage.active, usage.pending], [0, 0]);
          assert.ok((env.agent.maxOpenByRepoOwner.get(`owner${owner}`) ?? 0) <= 4);
        }
        assert.equal([...env.agent.maxOpenByReview.values()].filter((n) => n > 1).length, 0);
        console.log(
          `[${transport}] kill -9 with ${runningOnA} sessions on A: ${recovered} reviews recovered on B`,
        );
      } finally {
        await env.close();
      }
    },
  });

  Deno.test({
    name: `[${transport}] SIGINT hands running reviews back and another process completes them`,
    async fn() {
      const env = await setup(transport, 3_000);
      try {
        const a = await env.spawn({ viaTask: true });
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) ids.push(await sendPull(a.url, env.github, 3000, 300 + i));
        await waitFor("four sessions open", () => env.agent.open === 4 ? true : undefined, 10_000);
        const b = await env.spawn();
        const t0 = Date.now();
        const status = await a.stop("SIGINT");
        const exitMs = Date.now() - t0;
        assert.equal(status.code, 0);
        assert.ok(exitMs < 5_000, `exit took ${exitMs} ms`);
        const reviews = await allDone(b.url, ids, 30_000);
        const resumedMs = Date.now() - t0;
        // Resumed at once, not after the two-lease overdue recovery (3 s hold + 3 s).
        assert.ok(resumedMs < 5_500, `resumed after ${resumedMs} ms`);
        assert.deepEqual(reviews.map((r) => [r.status, r.attempts, r.handBacks]), [
          ["completed", 1, 1],
          ["completed", 1, 1],
          ["completed", 1, 1],
          ["completed", 1, 1],
        ]);
        // A handed-back attempt's session and the next one never share an idempotency key.
        const keys = env.agent.sessions.map((s) => s.headers.get("idempotency-key"));
        assert.equal(new Set(keys).size, keys.length, JSON.stringify(keys));
        const stopped = a.logs.find((l) => l.message === "stopped");
        console.log(
          `[${transport}] SIGINT: exited in ${exitMs} ms, hand-back ${stopped?.handBackMs} ms, ` +
            `all 4 completed on the other process ${resumedMs} ms after the signal ` +
            `(agent sessions hold 3000 ms)`,
        );
      } finally {
        await env.close();
      }
    },
  });

  Deno.test({
    name: `[${transport}] pushes handled by another process never open more sessions than slots`,
    async fn() {
      // Default lease settings: 30 s leases, re-read every second.
      const env = await setup(transport, 0, { LEASE_MS: "30000", LEASE_CHECK_MS: "1000" });
      const held = new Set([1, 2, 3, 4].map((n) => sha(n)));
      env.agent.setScript((s) =>
        held.has(s.body.headSha)
          ? sseResponse([{ comment: "hb", delayMs: 20_000 }, { event: "done", data: {} }])
          : slowReview(200)(s, { signal: new AbortController().signal })
      );
      try {
        const [a, b] = [await env.spawn(), await env.spawn()];
        const first: string[] = [];
        for (let n = 1; n <= 8; n++) first.push(await sendPull(a.url, env.github, 4000, n));
        await waitFor("four sessions open", () => env.agent.open === 4 ? true : undefined, 10_000);
        // The pushes reach the other process, which cannot abort A's streams directly.
        const pushedAt = Date.now();
        const pushed: string[] = [];
        for (let n = 1; n <= 4; n++) {
          pushed.push(await sendPull(b.url, env.github, 4000, n, sha(100 + n)));
        }
        const all = await allDone(a.url, [...first, ...pushed], 60_000);
        const superseded = all.filter((r) => r.terminalReason === "superseded");
        assert.equal(superseded.length, 4);
        assert.deepEqual(all.filter((r) => r.status === "completed").length, 8);
        assert.ok((env.agent.maxOpenByRepoOwner.get("owner4000") ?? 0) <= 4);
        const noticeMs = Math.max(...superseded.map((r) => r.finishedAt - pushedAt));
        assert.ok(noticeMs < 2_500, `superseded sessions closed ${noticeMs} ms after the push`);
        const usage = await getJson(a.url, "/owners/org/4000");
        assert.deepEqual([usage.active, usage.pending], [0, 0]);
        console.log(
          `[${transport}] cross-process stop: superseded sessions on A closed and their slots ` +
            `freed at most ${noticeMs} ms after the pushes reached B (LEASE_CHECK_MS=1000); ` +
            `max open sessions for the owner ${env.agent.maxOpenByRepoOwner.get("owner4000")}/4`,
        );
      } finally {
        await env.close();
      }
    },
  });
}

Deno.test("kill -9 between GitHub creating the comment and the commit: still one comment", async () => {
  // MAX_ATTEMPTS=1: the attempt that dies after posting was the last; posting-only attempts remain.
  const env = await setup("kv-table", 0, { CLOCK_SKEW_MS: "300", MAX_ATTEMPTS: "1" });
  env.agent.setScript(slowReview(100));
  try {
    const [a, b] = [await env.spawn(), await env.spawn()];
    const held = env.github.holdNext("comment");
    const id = await sendPull(a.url, env.github, 5000, 1);
    await held.started; // the comment exists on GitHub; A has not had the answer yet
    const holder = (await getJson(b.url, `/reviews/${id}`)).lease?.instance ?? "";
    const victim = holder.includes(`-${a.pid}-`) ? a : b;
    const other = victim === a ? b : a;
    await victim.stop("SIGKILL");
    held.release();
    const [done] = await allDone(other.url, [id], 30_000);
    assert.equal(done.status, "completed", done.errorMessage);
    assert.equal(done.attempts, 2);
    assert.equal(env.github.comments.length, 1);
    assert.equal(done.commentId, env.github.comments[0].id);
    console.log(
      `kill -9 after the comment POST: completed on the other process (attempts ${done.attempts}), ` +
        `comments ${env.github.comments.length}`,
    );
  } finally {
    await env.close();
  }
});
