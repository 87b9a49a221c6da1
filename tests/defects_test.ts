/**
 * One test per defect the adversarial review demonstrated (issue "Reliability"), through the real
 * HTTP server with a fake GitHub and a fake agent that fail on command. Each of these failed on
 * the code before the fenced-commit redesign.
 */
import assert from "node:assert/strict";
import { keys } from "../kv/keys.ts";
import { holdFirstSession, reviewScript, sseResponse } from "./fakes/agent.ts";
import {
  BACKEND_TOKEN,
  pullRequestPayload,
  sha,
  transportSuite as suite,
  waitFor,
  withHarness,
} from "./harness.ts";

const DONE = ["completed", "failed", "cancelled"];

/** A `POST /review` body for `owner/service#pull`. */
function apiBody(id: string, ownerId: number, pull: number, extra: Record<string, unknown> = {}) {
  return {
    reviewId: id,
    authToken: "agent-token",
    owner: { type: "org", id: ownerId },
    sessionInput: { githubRepo: `owner${ownerId}/service`, pullNumber: pull, ...extra },
  };
}

suite("1a. a PR with 12 unfinished reviews still takes a push (getMany batched)", (transport) => {
  const { script, release } = holdFirstSession();
  return withHarness(transport, { script, env: { MAX_CONCURRENT_PER_OWNER: "1" } }, async (h) => {
    h.github.setPull({ owner: "owner301", repo: "service", number: 5, headSha: sha(50) });
    for (let i = 0; i < 12; i++) {
      assert.equal((await h.api("POST", "/review", apiBody(`api-${i}`, 301, 5))).status, 202);
    }
    const res = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ ownerId: 301, number: 5, headSha: sha(50) }),
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    release();
    const last = await h.waitForStatus(res.body.reviewId as string, DONE, 20_000);
    assert.equal(last.status, "completed", last.errorMessage);
  });
});

suite("1b. limit 12 with 18 reviews waiting: every review finishes", (transport) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  return withHarness(transport, {
    script: () => sseResponse([{ event: "done", data: {} }], { holdUntil: gate }),
    env: { MAX_CONCURRENT_PER_OWNER: "12" },
  }, async (h) => {
    const ids: string[] = [];
    for (let n = 1; n <= 30; n++) ids.push((await h.openPull(302, n)).body.reviewId as string);
    await waitFor("12 sessions open", () => h.agent.open === 12 ? true : undefined);
    assert.equal((await h.api("GET", "/owners/org/302")).body.pending, 18);
    release();
    for (const id of ids) {
      const r = await h.waitForStatus(id, DONE, 20_000);
      assert.equal(r.status, "completed", r.errorMessage);
    }
    assert.ok((h.agent.maxOpenByRepoOwner.get("owner302") ?? 0) <= 12);
    const usage = await h.api("GET", "/owners/org/302");
    assert.deepEqual([usage.body.active, usage.body.pending], [0, 0]);
  });
});

Deno.test("2. a review too large as KV measures it is a 400 and stores nothing", () =>
  withHarness("kv-queue", {}, async (h) => {
    // 24,000 ASCII characters and one emoji: under 24 KiB of UTF-8, 48 KiB as KV stores it.
    const prompt = "a".repeat(24_000) + "😀";
    const res = await h.api("POST", "/review", apiBody("big-1", 303, 1, { prompt }));
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(String(res.body.error), /bytes/);
    const huge = await h.api("POST", "/review", {
      ...apiBody("big-2", 303, 1, { prompt: "中".repeat(20_000) }),
      authToken: "t".repeat(8_000),
    });
    assert.equal(huge.status, 400);
    assert.equal((await h.kv.get(keys.review("big-1"))).value, null);
    assert.equal((await h.kv.get(keys.owner({ type: "org", id: "303" }))).value, null);
    // The largest record the edge accepts runs to completion.
    const fits = await h.api(
      "POST",
      "/review",
      apiBody("fits", 303, 2, { prompt: "中".repeat(9_000), notes: "x".repeat(5_000) }),
    );
    assert.equal(fits.status, 202, JSON.stringify(fits.body));
    h.github.setPull({ owner: "owner303", repo: "service", number: 2 });
    const done = await h.waitForStatus("fits", DONE);
    assert.equal(done.status, "completed", done.errorMessage);
  }));

suite("3a. a late webhook for an older head does not supersede the newer head", (transport) => {
  const { script, release } = holdFirstSession();
  return withHarness(transport, { script }, async (h) => {
    const t0 = Date.now();
    h.github.setPull({ owner: "owner304", repo: "service", number: 9, headSha: sha(2) });
    const newer = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({
        action: "synchronize",
        ownerId: 304,
        number: 9,
        headSha: sha(2),
        updatedAt: t0 + 1_000,
      }),
    );
    await waitFor("newer head running", () => h.agent.open === 1 ? true : undefined);
    // The webhook of the older push arrives late.
    const older = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ ownerId: 304, number: 9, headSha: sha(1), updatedAt: t0 }),
    );
    assert.equal(older.status, 202);
    release();
    const b = await h.waitForStatus(newer.body.reviewId as string, DONE);
    const a = await h.waitForStatus(older.body.reviewId as string, DONE);
    assert.equal(b.status, "completed", b.errorMessage);
    assert.equal(a.status, "cancelled");
    assert.equal(a.terminalReason, "superseded");
    assert.equal(h.github.comments.length, 1);
    assert.match(h.github.comments[0].body, new RegExp(sha(2).slice(0, 7)));
  });
});

Deno.test("3b. closed, then reopened on the same head: the head is reviewed", () =>
  withHarness("kv-table", {}, async (h) => {
    h.github.setPull({
      owner: "owner305",
      repo: "service",
      number: 3,
      headSha: sha(3),
      state: "closed",
    });
    const first = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ ownerId: 305, number: 3, headSha: sha(3) }),
    );
    const cancelled = await h.waitForStatus(first.body.reviewId as string, DONE);
    assert.equal(cancelled.status, "cancelled");
    h.github.setPull({ owner: "owner305", repo: "service", number: 3, state: "open" });
    const reopened = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ action: "reopened", ownerId: 305, number: 3, headSha: sha(3) }),
    );
    assert.notEqual(reopened.body.reviewId, first.body.reviewId);
    const done = await h.waitForStatus(reopened.body.reviewId as string, DONE);
    assert.equal(done.status, "completed", done.errorMessage);
    assert.equal(h.github.comments.length, 1);
  }));

suite(
  "4a. GitHub creates the comment and answers 502: the retry adopts it",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      h.github.failNext("comment", 502, 1, { afterEffect: true });
      const id = (await h.openPull(306, 1)).body.reviewId as string;
      const done = await h.waitForStatus(id, DONE);
      assert.equal(done.status, "completed", done.errorMessage);
      assert.equal(h.github.comments.length, 1);
      assert.equal(done.commentId, h.github.comments[0].id);
      assert.equal(h.agent.sessions.length, 1, "the agent session is not run again");
    }),
);

Deno.test("4b. a push while the comment POST is slow: still one comment, showing the new head", () =>
  withHarness("kv-queue", {}, async (h) => {
    const held = h.github.holdNext("comment");
    const a = (await h.openPull(307, 4, sha(41))).body.reviewId as string;
    await held.started;
    h.github.setPull({ owner: "owner307", repo: "service", number: 4, headSha: sha(42) });
    const b = (await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ action: "synchronize", ownerId: 307, number: 4, headSha: sha(42) }),
    )).body.reviewId as string;
    await new Promise((r) => setTimeout(r, 200));
    held.release();
    const rb = await h.waitForStatus(b, DONE);
    const ra = await h.waitForStatus(a, DONE);
    assert.equal(rb.status, "completed", rb.errorMessage);
    // A's post was already on its way: A ends completed (not a cancelled review with a comment).
    assert.equal(ra.status, "completed");
    assert.equal(h.github.comments.length, 1);
    assert.match(h.github.comments[0].body, new RegExp(sha(42).slice(0, 7)));
    const pointer = await h.kv.get<{ commentId: number; reviewId: string }>(
      keys.prComment("owner307/service", 4),
    );
    assert.equal(pointer.value?.commentId, h.github.comments[0].id);
    assert.equal(pointer.value?.reviewId, b);
  }));

Deno.test("4c. a cancel during the comment POST never leaves a cancelled review's comment", () =>
  withHarness("kv-table", {}, async (h) => {
    const held = h.github.holdNext("comment");
    const id = (await h.openPull(308, 1)).body.reviewId as string;
    await held.started;
    const cancel = h.api("POST", `/reviews/${id}/cancel`, { reason: "stop" });
    await new Promise((r) => setTimeout(r, 100));
    held.release();
    const answer = await cancel;
    const done = await h.waitForStatus(id, DONE);
    assert.ok([200, 202, 409].includes(answer.status), String(answer.status));
    const cancelledWithComment = done.status === "cancelled" && h.github.comments.length > 0;
    assert.equal(cancelledWithComment, false);
    assert.ok(h.github.comments.length <= 1);
    // And a cancel before the post: no comment at all.
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    h.agent.setScript((s) =>
      sseResponse([{ event: "done", data: {} }], {
        holdUntil: s.body.pullNumber === 2 ? gate : undefined,
      })
    );
    const id2 = (await h.openPull(308, 2)).body.reviewId as string;
    await waitFor("session open", () => h.agent.open === 1 ? true : undefined);
    const stopped = await h.api("POST", `/reviews/${id2}/cancel`, { reason: "stop" });
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    assert.equal(stopped.body.status, "cancelled");
    assert.equal(h.agent.open, 0, "the session closed before the slot was freed");
    release();
    assert.equal(h.github.comments.filter((c) => c.issueNumber === 2).length, 0);
  }));

Deno.test("6. an attempt claimed while shutdown begins is handed back at once, not charged", () =>
  withHarness("kv-queue", { script: reviewScript({ delayMs: 3_000 }) }, async (h) => {
    h.github.setPull({ owner: "owner309", repo: "service", number: 1 });
    const res = await h.api("POST", "/review", apiBody("shut-1", 309, 1));
    assert.equal(res.status, 202);
    const queued = await h.review("shut-1");
    // Claim the message and begin shutdown in the same tick: the claim resolves after `stopping`.
    const message = {
      type: "run_review",
      reviewId: "shut-1",
      token: (await h.kv.get<{ dispatchToken: string }>(keys.review("shut-1"))).value!
        .dispatchToken,
    };
    const handling = h.service.worker.handle(message);
    await h.service.worker.shutdown(2_000);
    await handling;
    const after = await h.review("shut-1");
    assert.equal(queued.status, "queued");
    assert.equal(after.status, "queued", "handed back");
    assert.equal(after.attempts, 0);
    assert.equal(after.handBacks, 1);
  }));

Deno.test("7. an agent streaming one endless line fails the review with bounded memory", () => {
  let sent = 0;
  return withHarness("kv-queue", {
    script: (_s, ctl) => {
      const chunk = new TextEncoder().encode("y".repeat(64 * 1024));
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("event: finding\ndata: "));
        },
        pull(c) {
          if (ctl.signal.aborted || sent > 256 * 1024 * 1024) return c.close();
          sent += chunk.byteLength;
          c.enqueue(chunk);
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    },
  }, async (h) => {
    const id = (await h.openPull(310, 1)).body.reviewId as string;
    const done = await h.waitForStatus(id, DONE, 20_000);
    assert.equal(done.status, "failed");
    assert.match(String(done.errorMessage), /exceeds/);
    assert.ok(sent < 16 * 1024 * 1024, `read ${sent} bytes of one line`);
  });
});

Deno.test("9. hostile inputs: 400 for a 3,000-character repo, 202 with a cut 70 KB title", () =>
  withHarness("kv-queue", {}, async (h) => {
    const long = pullRequestPayload({ ownerId: 311, number: 1, headSha: sha(1) }) as {
      repository: { full_name: string };
      pull_request: { title: string };
    };
    long.repository.full_name = `owner311/${"r".repeat(3_000)}`;
    const res = await h.sendWebhook("pull_request", long);
    assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 200));
    assert.deepEqual(await Array.fromAsync(h.kv.list({ prefix: ["reviews"] })), []);
    const titled = pullRequestPayload({ ownerId: 311, number: 2, headSha: sha(2) }) as {
      pull_request: { title: string };
    };
    titled.pull_request.title = "T😀".repeat(35_000);
    h.github.setPull({ owner: "owner311", repo: "service", number: 2, headSha: sha(2) });
    const ok = await h.sendWebhook("pull_request", titled);
    assert.equal(ok.status, 202, JSON.stringify(ok.body).slice(0, 200));
    const stored = await h.review(ok.body.reviewId as string);
    assert.ok(stored.title!.length < 1_100);
  }));

Deno.test("9. a webhook without a signature is refused before its body is read", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled += 1;
        if (pulled > 400) return c.close(); // 400 × 64 KiB ≈ 25 MiB at most
        c.enqueue(new Uint8Array(64 * 1024));
        return new Promise((r) => setTimeout(r, 5));
      },
    });
    const started = Date.now();
    const res = await fetch(`${h.url}/webhooks/github`, {
      method: "POST",
      headers: { "x-github-event": "pull_request", "content-type": "application/json" },
      body: endless,
      // @ts-ignore: Deno's fetch takes a streaming body with duplex "half"
      duplex: "half",
    });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    assert.ok(Date.now() - started < 1_000, `answered after ${Date.now() - started} ms`);
    assert.ok(pulled < 100, `read ${pulled} chunks before answering`);
  });
});

Deno.test("secondary rate limit (403 + retry-after) is retried after the wait GitHub asks for", () =>
  withHarness("kv-table", {}, async (h) => {
    h.github.failNext("pulls.get", 403, 1, {
      headers: { "retry-after": "1" },
    });
    const started = Date.now();
    const id = (await h.openPull(312, 1)).body.reviewId as string;
    const done = await h.waitForStatus(id, DONE);
    assert.equal(done.status, "completed", done.errorMessage);
    assert.equal(done.attempts, 2);
    assert.ok(Date.now() - started >= 1_000, "waited for retry-after");
  }));

Deno.test("status callbacks: every status change, in order, retried after a failing backend", async () => {
  const received: Array<{ id: string; status: string; rev: number }> = [];
  let failures = 2;
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.json();
    if (failures-- > 0) return new Response("down", { status: 503 });
    received.push({ id: new URL(req.url).pathname.split("/").pop()!, ...body });
    return new Response(null, { status: 204 });
  });
  try {
    await withHarness("kv-queue", {
      env: { API_URL: `http://127.0.0.1:${backend.addr.port}`, INTERNAL_API_SECRET: "s" },
    }, async (h) => {
      const id = (await h.openPull(313, 1)).body.reviewId as string;
      await h.waitForStatus(id, DONE);
      await h.service.callbacks.idle(10_000);
      const mine = received.filter((r) => r.id === id);
      assert.deepEqual(mine.map((r) => r.status), ["queued", "running", "completed"]);
      const revs = mine.map((r) => r.rev);
      assert.deepEqual(revs, [...revs].sort((a, b) => a - b));
    });
  } finally {
    await backend.shutdown();
  }
});

Deno.test("a running review that is cancelled closes its session before the slot moves on", () => {
  const { script, release } = holdFirstSession();
  return withHarness("kv-table", { script, env: { MAX_CONCURRENT_PER_OWNER: "1" } }, async (h) => {
    const a = (await h.openPull(314, 1)).body.reviewId as string;
    const b = (await h.openPull(314, 2)).body.reviewId as string;
    await waitFor("first session", () => h.agent.open === 1 ? true : undefined);
    assert.equal((await h.review(b)).status, "pending");
    const res = await h.api("POST", `/reviews/${a}/cancel`, {});
    assert.equal(res.status, 200);
    const done = await h.waitForStatus(b, DONE);
    release();
    assert.equal(done.status, "completed");
    assert.equal(h.agent.maxOpenByRepoOwner.get("owner314"), 1);
  });
});

// Defects an adversarial review of the redesign demonstrated.

Deno.test("a review that read an old head never supersedes the newer head's review", () =>
  withHarness("kv-queue", { env: { MAX_CONCURRENT_PER_OWNER: "1" } }, async (h) => {
    h.github.setPull({ owner: "owner320", repo: "service", number: 1, headSha: sha(1) });
    const held = h.github.holdNext("pulls.get");
    assert.equal((await h.api("POST", "/review", apiBody("api-r1", 320, 1))).status, 202);
    await held.started; // api-r1 is reading the PR: head 1
    h.github.setPull({ owner: "owner320", repo: "service", number: 1, headSha: sha(2) });
    const newer = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ action: "synchronize", ownerId: 320, number: 1, headSha: sha(2) }),
    );
    held.release(); // GitHub's answer still says head 1
    const b = await h.waitForStatus(newer.body.reviewId as string, DONE);
    await h.waitForStatus("api-r1", DONE);
    assert.equal(b.status, "completed", b.errorMessage);
    assert.equal(h.github.comments.length, 1);
    assert.match(h.github.comments[0].body, new RegExp(sha(2).slice(0, 7)));
  }));

Deno.test("a stranger's comment carrying our marker is neither adopted nor blocking", () =>
  withHarness("kv-table", {}, async (h) => {
    h.github.comments.push({
      id: 1,
      owner: "owner321",
      repo: "service",
      issueNumber: 1,
      body: "<!-- ai-code-review:v1 --> I wrote this",
      updatedCount: 0,
      author: "mallory",
    });
    const id = (await h.openPull(321, 1)).body.reviewId as string;
    const done = await h.waitForStatus(id, DONE);
    assert.equal(done.status, "completed", done.errorMessage);
    assert.equal(h.github.comments[0].body, "<!-- ai-code-review:v1 --> I wrote this");
    assert.equal(h.github.comments.length, 2);
    assert.equal(done.commentId, h.github.comments[1].id);
  }));

Deno.test("a force-push back to an earlier head reviews it again: the comment shows that head", () =>
  withHarness("kv-queue", {}, async (h) => {
    for (const [n, action] of [[1, "opened"], [2, "synchronize"], [1, "synchronize"]] as const) {
      h.github.setPull({ owner: "owner322", repo: "service", number: 1, headSha: sha(n) });
      const res = await h.sendWebhook(
        "pull_request",
        pullRequestPayload({ action, ownerId: 322, number: 1, headSha: sha(n) }),
      );
      assert.equal((await h.waitForStatus(res.body.reviewId as string, DONE)).status, "completed");
    }
    assert.equal(h.github.comments.length, 1);
    assert.match(h.github.comments[0].body, new RegExp(`\`${sha(1).slice(0, 7)}\``));
  }));

Deno.test("deeply nested bodies and forged-signature floods get 4xx/503, never 5xx errors", () =>
  withHarness("kv-queue", {}, async (h) => {
    for (const depth of [1_000, 100_000]) {
      const nested = "[".repeat(depth) + "]".repeat(depth);
      const res = await fetch(`${h.url}/review`, {
        method: "POST",
        headers: { authorization: `Bearer ${BACKEND_TOKEN}`, "content-type": "application/json" },
        body: `{"reviewId":"deep","authToken":"t","owner":{"type":"org","id":1},` +
          `"sessionInput":{"githubRepo":"o/r","pullNumber":1,"x":${nested}}}`,
      });
      assert.equal(res.status, 400, await res.text());
    }
    // Eight slow 16 MiB bodies with a made-up signature at once: beyond the shared budget, 503.
    const forged = () => {
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (sent >= 16) return c.close();
          sent++;
          await new Promise((r) => setTimeout(r, 20));
          c.enqueue(new Uint8Array(1024 * 1024));
        },
      });
      return fetch(`${h.url}/webhooks/github`, {
        method: "POST",
        headers: {
          "x-github-event": "pull_request",
          "x-hub-signature-256": `sha256=${"0".repeat(64)}`,
        },
        body,
      }).then(async (r) => (await r.body?.cancel(), r.status));
    };
    const statuses = await Promise.all(Array.from({ length: 8 }, forged));
    assert.ok(statuses.every((s) => s === 401 || s === 503), JSON.stringify(statuses));
    assert.ok(statuses.includes(503), JSON.stringify(statuses));
    assert.deepEqual(await Array.fromAsync(h.kv.list({ prefix: ["reviews"] })), []);
  }));
