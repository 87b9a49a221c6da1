/**
 * Adversarial tests of the performance work (owner read with the dedupe keys, the fast path's
 * message drop, the result commit that carries progress and the publish claim, the hand-written
 * Octokit limits, the delayed first progress write). "attack …: <defect>" tests fail on the code
 * they were written against; "attack … (withstood): …" tests pass and guard what held.
 */
import assert from "node:assert/strict";
import { Octokit } from "@octokit/rest";
import { applyLimits, type LimitOptions } from "../review/octokit_limits.ts";
import { kiloReviewFrames, kiloStream, startFakeKilo } from "./fakes/kilo.ts";
import { sseResponse } from "./fakes/agent.ts";
import { type Harness, sha, startHarness, waitFor, withHarness } from "./harness.ts";
import { type Mutation, type Recorder, recordingKv } from "./kv_recorder.ts";
import type { ReviewAgent } from "../review/agents/agent.ts";

// ---------------------------------------------------------------------------------------------
// 4. Octokit limits
// ---------------------------------------------------------------------------------------------

const LIMITS: LimitOptions = {
  maxConcurrent: 100,
  writeIntervalMs: 0,
  retries: 2,
  retryBaseMs: 1,
  maxInlineWaitMs: 10_000,
};

function octokitWith(
  answer: (request: Request) => Response | Promise<Response>,
  limits: Partial<LimitOptions> = {},
) {
  const octokit = new Octokit({
    baseUrl: "http://github.invalid",
    request: { fetch: (input: string, init: RequestInit) => answer(new Request(input, init)) },
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
  applyLimits(octokit, { ...LIMITS, ...limits });
  return octokit;
}

const pull = { owner: "o", repo: "r", pull_number: 1 };
const comment = { owner: "o", repo: "r", issue_number: 1, body: "x" };

Deno.test("attack limits (withstood): a create answered 502 or not answered is sent once, with request.retries 0", async () => {
  for (const answer of ["502", "network"] as const) {
    let posts = 0;
    const octokit = octokitWith(() => {
      posts++;
      if (answer === "network") throw new TypeError("connection reset");
      return new Response("bad gateway", { status: 502 });
    });
    await assert.rejects(octokit.issues.createComment({ ...comment, request: { retries: 0 } }));
    assert.equal(posts, 1, `${answer}: the create was sent ${posts} times`);
  }
});

Deno.test("attack limits (withstood): a read answered 502 is retried `retries` times, then fails", async () => {
  let gets = 0;
  const octokit = octokitWith(() => {
    gets++;
    return new Response("bad gateway", { status: 502 });
  });
  await assert.rejects(octokit.pulls.get(pull));
  assert.equal(gets, 3);
});

Deno.test("attack limits: a read answered 429 with x-ratelimit-remaining 0 and a reset an hour away is sent again at once (twice), not failed", async () => {
  let gets = 0;
  const reset = String(Math.floor(Date.now() / 1000) + 3_600);
  const octokit = octokitWith(() => {
    gets++;
    return Response.json({ message: "API rate limit exceeded" }, {
      status: 429,
      headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset },
    });
  });
  await assert.rejects(octokit.pulls.get(pull));
  // A primary limit longer than maxInlineWaitMs must fail the request (the pipeline retries
  // after GitHub's wait); hitting GitHub again while limited is what GitHub bans integrations for.
  assert.equal(gets, 1, `sent ${gets} times while rate limited for an hour`);
});

Deno.test("attack limits: a read answered 429 with retry-after 2 is retried before the wait GitHub asked for", async () => {
  const at: number[] = [];
  const octokit = octokitWith(() => {
    at.push(performance.now());
    return at.length === 1
      ? Response.json({ message: "Too many requests" }, {
        status: 429,
        headers: { "retry-after": "2" },
      })
      : Response.json({ number: 1 });
  });
  await octokit.pulls.get(pull);
  assert.equal(at.length, 2);
  assert.ok(at[1] - at[0] >= 1_900, `retried after ${Math.round(at[1] - at[0])} ms, asked 2000`);
});

Deno.test("attack limits (withstood): secondary limits: a short retry-after waited once, an absurd one fails at once; creates spaced", async () => {
  for (const after of ["1", "1e400", "abc"]) {
    let calls = 0;
    const octokit = octokitWith(() => {
      calls++;
      return calls === 1
        ? Response.json({ message: "You have exceeded a secondary rate limit" }, {
          status: 403,
          headers: { "retry-after": after },
        })
        : Response.json({ id: 1 }, { status: 201 });
    }, { maxInlineWaitMs: 5_000 });
    const call = octokit.issues.createComment({ ...comment, request: { retries: 0 } });
    if (after === "1") {
      await call;
      assert.equal(calls, 2);
    } else {
      await assert.rejects(call);
      assert.equal(calls, 1, `retry-after ${after}`);
    }
  }
  const starts: number[] = [];
  const octokit = octokitWith(() => {
    starts.push(performance.now());
    return starts.length === 2
      ? new Response("bad gateway", { status: 502 })
      : Response.json({ id: 1 }, { status: 201 });
  }, { writeIntervalMs: 80 });
  await Promise.allSettled(
    [1, 2, 3, 4].map(() => octokit.issues.updateComment({ ...comment, comment_id: 1 })),
  );
  for (let i = 1; i < starts.length; i++) {
    assert.ok(starts[i] - starts[i - 1] >= 75, `writes (retries too) spaced: ${starts}`);
  }
});

// ---------------------------------------------------------------------------------------------
// 5. Progress: usage of a kilo session shorter than PROGRESS_WRITE_MS whose callback comes first
// ---------------------------------------------------------------------------------------------

Deno.test("attack progress: a kilo session whose callback arrives before its stream ends loses all its usage (first progress write delayed)", async () => {
  const kilo = await startFakeKilo((_s, ctl) => {
    const frames = kiloReviewFrames(ctl.sessionId);
    // Everything but `complete` at once; the callback at 100 ms; `complete` at 600 ms.
    frames[frames.length - 1] = { ...frames[frames.length - 1], delayMs: 600 };
    ctl.callback({ status: "completed" }, { delayMs: 100 });
    return kiloStream(frames, ctl);
  });
  try {
    await withHarness("kv-queue", {
      env: {
        AGENT_KIND: "kilo",
        AGENT_URL: kilo.url,
        AGENT_CALLBACK_WAIT_MS: "300",
        PROGRESS_WRITE_MS: "2000",
        FAST_PATH: "true",
      },
    }, async (h) => {
      const { body } = await h.openPull(1, 1);
      const id = body.reviewId as string;
      const done = await h.waitForStatus(id, ["completed"]);
      await new Promise((r) => setTimeout(r, 800)); // the stream's end and its flush
      const after = await h.review(id);
      assert.equal(done.status, "completed");
      assert.deepEqual(after.usage, {
        model: "anthropic/claude-sonnet-4",
        tokensIn: 1200,
        tokensOut: 340,
        cost: 0.0123,
      }, "the session's usage is on the record");
    });
  } finally {
    await kilo.close();
  }
});

const isResultCommit = (mutations: Mutation[]) =>
  mutations.some(([key, value]) =>
    key[0] === "reviews" &&
    (value as { status?: string; resultStored?: boolean }).status === "running" &&
    (value as { resultStored?: boolean }).resultStored === true
  );

Deno.test("attack progress (withstood): a result commit that fails (KV error) keeps the session's usage in the review's total", async () => {
  const kv = await Deno.openKv(":memory:");
  let failed = 0;
  const rec: Recorder = { commits: [] };
  rec.before = (mutations) => {
    if (failed === 0 && isResultCommit(mutations)) {
      failed++;
      throw new Error("injected KV failure of the result commit");
    }
  };
  const agent: ReviewAgent = {
    kind: "openai",
    review(_request, { emit }) {
      emit({ type: "usage", model: "gpt-test", tokensIn: 1000, tokensOut: 200, cost: 0.01 });
      emit({ type: "done" });
      return Promise.resolve();
    },
  };
  try {
    await withHarness("kv-table", {
      env: { PROGRESS_WRITE_MS: "5000" },
      agent,
      wrapKv: () => recordingKv(kv, rec, { dead: false }),
    }, async (h) => {
      const { body } = await h.openPull(1, 1);
      const id = body.reviewId as string;
      const done = await waitFor("completed", async () => {
        const r = (await kv.get<{ status: string; usage?: { tokensIn: number } }>(["reviews", id]))
          .value;
        return r?.status === "completed" || r?.status === "failed" ? r : undefined;
      });
      assert.equal(failed, 1);
      assert.equal(done.status, "completed");
      assert.equal(done.usage?.tokensIn, 2000, "both sessions' usage counted");
    });
  } finally {
    kv.close();
  }
});

// ---------------------------------------------------------------------------------------------
// 3. The result commit takes the publish claim: a crash after it, before the post
// ---------------------------------------------------------------------------------------------

Deno.test("attack publish (withstood): a crash right after the result commit (claim taken) — the recovery posts exactly one comment", async () => {
  const dir = await Deno.makeTempDir({ prefix: "attack-result-crash-" });
  const a = await Deno.openKv(`${dir}/kv.sqlite3`);
  const b = await Deno.openKv(`${dir}/kv.sqlite3`);
  const life = { dead: false };
  let died!: () => void;
  const death = new Promise<void>((r) => died = r);
  const rec: Recorder = { commits: [] };
  rec.after = (mutations) => {
    if (!isResultCommit(mutations)) return;
    const claimed = mutations.some(([key, value]) =>
      key[0] === "pr_comments" && (value as { claim?: unknown }).claim !== undefined
    );
    assert.ok(claimed, "the result commit took the publish claim");
    life.dead = true;
    died();
    throw new Error("this process died after its result commit");
  };
  const one = await startHarness({
    transport: "kv-table",
    wrapKv: () => recordingKv(a, rec, life),
    script: () =>
      sseResponse([{ event: "summary", data: { text: "s" } }, { event: "done", data: {} }]),
    env: { FAST_PATH: "true", LEASE_MS: "600", QUEUE_POLL_MS: "200" },
  });
  let two: Harness | undefined;
  try {
    const res = await one.openPull(1, 1);
    assert.equal(res.status, 202);
    const id = res.body.reviewId as string;
    await death;
    two = await startHarness({
      transport: "kv-table",
      wrapKv: () => b,
      env: {
        GITHUB_API_URL: one.github.url,
        AGENT_URL: one.agent.url,
        SWEEP_INTERVAL_MS: "200",
        CLOCK_SKEW_MS: "0",
        QUEUE_POLL_MS: "50",
      },
    });
    const done = await two.waitForStatus(id, ["completed"], 10_000);
    assert.equal(one.github.comments.length, 1, "exactly one comment");
    assert.equal(one.agent.sessions.length, 1, "the stored result is not produced again");
    assert.equal(done.commentId, one.github.comments[0].id);
    const pointer = (await b.get<{ claim?: unknown }>(["pr_comments", "owner1/service", 1])).value;
    assert.equal(pointer?.claim, undefined, "no claim left behind");
  } finally {
    await two?.close();
    await one.close();
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("attack publish (withstood): a cancel committed right after the result commit (same process) posts nothing", async () => {
  const kv = await Deno.openKv(":memory:");
  const rec: Recorder = { commits: [] };
  // deno-lint-ignore prefer-const -- assigned after the recorder that uses it
  let h!: Harness;
  let cancelled = false;
  rec.after = async (mutations) => {
    if (cancelled || !isResultCommit(mutations)) return;
    cancelled = true;
    const id = (mutations.find(([k]) => k[0] === "reviews")![0][1]) as string;
    const res = await h.api("POST", `/reviews/${id}/cancel`, { reason: "attack" });
    assert.equal(res.status < 300, true, `cancel answered ${res.status}`);
    await new Promise((r) => setTimeout(r, 50));
  };
  // kv-table: a kv-queue listener on a handle the harness does not close would never end.
  h = await startHarness({
    transport: "kv-table",
    wrapKv: () => recordingKv(kv, rec, { dead: false }),
    env: { FAST_PATH: "true" },
  });
  try {
    const { body } = await h.openPull(1, 1);
    const done = await h.waitForStatus(body.reviewId as string, ["cancelled", "completed"]);
    assert.equal(cancelled, true);
    assert.equal(done.status, "cancelled");
    assert.equal(h.github.comments.length, 0, "nothing posted after the cancel");
    const pointer = (await kv.get<{ claim?: unknown }>(["pr_comments", "owner1/service", 1])).value;
    assert.equal(pointer?.claim, undefined, "the claim was given back");
  } finally {
    await h.close();
    kv.close();
  }
});

// ---------------------------------------------------------------------------------------------
// 1. Create reads the owner entry with the dedupe keys and skips the line when no slot is free
// ---------------------------------------------------------------------------------------------

for (const transport of ["kv-queue", "kv-table"] as const) {
  Deno.test(`[${transport}] attack ingest (withstood): completions, creates, supersedes and a raised limit racing on one owner leave no free slot beside a waiting review`, async () => {
    await withHarness(transport, {
      env: { MAX_CONCURRENT_PER_OWNER: "1", FAST_PATH: "true" },
      script: () =>
        sseResponse([{ event: "summary", data: { text: "s" } }, { event: "done", data: {} }]),
    }, async (h) => {
      const ids: string[] = [];
      const sends: Promise<void>[] = [];
      for (let n = 1; n <= 12; n++) {
        h.github.setPull({ owner: "owner7", repo: "service", number: n, headSha: sha(n) });
      }
      for (let n = 1; n <= 12; n++) {
        sends.push(
          h.openPull(7, n).then((r) => {
            assert.equal(r.status, 202);
            ids.push(r.body.reviewId as string);
          }),
        );
        if (n === 6) {
          sends.push(
            h.api("PUT", "/owners/org/7/limit", { limit: 2 }).then((r) => {
              assert.ok(r.status < 300, `limit: ${r.status}`);
            }),
          );
        }
        // A newer push of PR 3 while earlier ones wait or run: supersedes PR 3's first review.
        if (n === 8) {
          h.github.setPull({ owner: "owner7", repo: "service", number: 3, headSha: sha(300) });
          sends.push(
            h.sendWebhook(
              "pull_request",
              (await import("./harness.ts")).pullRequestPayload({
                action: "synchronize",
                ownerId: 7,
                number: 3,
                headSha: sha(300),
              }),
            ).then((r) => {
              assert.equal(r.status, 202);
              ids.push(r.body.reviewId as string);
            }),
          );
        }
      }
      await Promise.all(sends);
      for (const id of ids) {
        await h.waitForStatus(id, ["completed", "superseded", "cancelled"], 20_000);
      }
      const owner = (await h.api("GET", "/owners/org/7")).body;
      assert.equal(owner.active, 0);
      assert.equal(owner.pending, 0);
      assert.ok((h.agent.maxOpenByRepoOwner.get("owner7") ?? 0) <= 2);
      assert.equal(h.github.comments.filter((c) => c.body.includes("#3")).length <= 1, true);
    });
  });
}
