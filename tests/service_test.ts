/**
 * The core flows through the real HTTP server, run once per queue transport with the same
 * assertions.
 */
import assert from "node:assert/strict";
import { holdFirstSession, sseResponse } from "./fakes/agent.ts";
import {
  pullRequestPayload,
  sha,
  transportSuite as suite,
  waitFor,
  withHarness,
} from "./harness.ts";

suite(
  "a signed webhook becomes a completed review with a comment on the PR",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      const res = await h.openPull(101, 7);
      assert.equal(res.status, 202);
      const id = res.body.reviewId as string;
      const done = await h.waitForStatus(id, ["completed", "failed"]);
      assert.equal(done.status, "completed", done.errorMessage);
      assert.equal(done.attempts, 1);
      assert.equal(done.headSha, sha(7));
      const findings = done.findings as Array<{ severity: string; line_start: number | null }>;
      assert.deepEqual(findings.map((f) => f.severity).sort(), ["critical", "medium"]);
      assert.equal(h.github.comments.length, 1);
      const comment = h.github.comments[0];
      assert.equal(comment.issueNumber, 7);
      assert.match(comment.body, /^<!-- ai-code-review/);
      assert.equal(done.commentId, comment.id);
      const session = h.agent.sessions[0];
      assert.equal(session.headers.get("authorization"), "Bearer test-agent-token");
      assert.equal(session.headers.get("idempotency-key"), `${id}:1`);
      assert.equal(session.body.repo, "owner101/service");
      assert.equal(session.body.headSha, sha(7));
      assert.ok(session.body.diff.length > 0);
      assert.equal(session.body.model, "test-model");
      const usage = await h.api("GET", "/owners/org/101");
      assert.deepEqual(usage.body, {
        owner: { type: "org", id: "101", login: "owner101" },
        limit: 4,
        active: 0,
        pending: 0,
      });
    }),
);

suite(
  "ten reviews for one owner never run more than four at once; another owner is not held back",
  (
    transport,
  ) => {
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    return withHarness(transport, {
      script: (s) =>
        sseResponse([{ event: "summary", data: { text: "ok" } }, { event: "done", data: {} }], {
          holdUntil: s.body.repo.startsWith("owner201/") ? gate : undefined,
        }),
    }, async (h) => {
      const ids: string[] = [];
      for (let n = 1; n <= 10; n++) ids.push((await h.openPull(201, n)).body.reviewId as string);
      await waitFor("four sessions open", () => h.agent.open === 4 ? true : undefined);
      const usage = await h.api("GET", "/owners/org/201");
      assert.deepEqual([usage.body.active, usage.body.pending], [4, 6]);
      // Owner 202 gets a slot at once although owner 201 has six waiting.
      const other = (await h.openPull(202, 1)).body.reviewId as string;
      assert.equal((await h.waitForStatus(other, ["completed"], 5_000)).status, "completed");
      release();
      for (const id of ids) {
        assert.equal((await h.waitForStatus(id, ["completed"])).status, "completed");
      }
      assert.equal(h.agent.maxOpenByRepoOwner.get("owner201"), 4);
      assert.equal(
        h.agent.sessions.filter((s) => s.body.repo.startsWith("owner201/")).length,
        10,
      );
      const after = await h.api("GET", "/owners/org/201");
      assert.deepEqual([after.body.active, after.body.pending], [0, 0]);
    });
  },
);

suite(
  "a duplicate delivery or the same head gives one review",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      const payload = pullRequestPayload({ ownerId: 301, number: 3, headSha: sha(3) });
      h.github.setPull({ owner: "owner301", repo: "service", number: 3, headSha: sha(3) });
      const a = await h.sendWebhook("pull_request", payload, { deliveryId: "d-1" });
      const b = await h.sendWebhook("pull_request", payload, { deliveryId: "d-1" });
      const c = await h.sendWebhook("pull_request", payload, { deliveryId: "d-2" });
      assert.equal(a.status, 202);
      assert.equal(b.body.reviewId, a.body.reviewId);
      assert.equal(c.body.reviewId, a.body.reviewId);
      await h.waitForStatus(a.body.reviewId as string, ["completed"]);
      const list = await h.api("GET", "/reviews?owner=org:301");
      assert.equal((list.body.reviews as unknown[]).length, 1);
      assert.equal(h.agent.sessions.length, 1);
    }),
);

suite("wrong or missing signatures and malformed bodies are rejected and store nothing", (
  transport,
) =>
  withHarness(transport, {}, async (h) => {
    const payload = pullRequestPayload({ ownerId: 401, number: 1, headSha: sha(1) });
    const wrong = await h.sendWebhook("pull_request", payload, { secret: "not-the-secret" });
    assert.equal(wrong.status, 401);
    const missing = await h.sendWebhook("pull_request", payload, { secret: null });
    assert.equal(missing.status, 401);
    const badJson = await h.sendWebhook("pull_request", null, { rawBody: "{not json" });
    assert.equal(badJson.status, 400);
    const incomplete = await h.sendWebhook("pull_request", { action: "opened", number: 1 });
    assert.equal(incomplete.status, 400);
    const all = await Array.fromAsync(h.kv.list({ prefix: [] }));
    assert.deepEqual(all.map((e) => e.key[0]).filter((k) => k !== "health"), []);
  }));

suite(
  "events and actions that do not start a review are ignored",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      const ping = await h.sendWebhook("ping", { zen: "Keep it logically awesome." });
      assert.deepEqual([ping.status, ping.body.status], [200, "ignored"]);
      const labeled = await h.sendWebhook(
        "pull_request",
        pullRequestPayload({ action: "labeled", ownerId: 1, number: 1, headSha: sha(1) }),
      );
      assert.deepEqual([labeled.status, labeled.body.status], [200, "ignored"]);
      const draft = await h.sendWebhook(
        "pull_request",
        pullRequestPayload({ ownerId: 1, number: 2, headSha: sha(2), draft: true }),
      );
      assert.deepEqual([draft.status, draft.body.reason], [200, "pull request is a draft"]);
      const closed = await h.sendWebhook(
        "pull_request",
        pullRequestPayload({
          action: "reopened",
          ownerId: 1,
          number: 3,
          headSha: sha(3),
          state: "closed",
        }),
      );
      assert.equal(closed.body.status, "ignored");
      assert.deepEqual((await h.api("GET", "/reviews")).body.reviews, []);
    }),
);

suite(
  "an agent 503 is retried and the review completes on attempt 2",
  (transport) =>
    withHarness(transport, {
      script: (s) =>
        s.index === 0
          ? new Response("overloaded", { status: 503 })
          : sseResponse([{ event: "summary", data: { text: "second time" } }, {
            event: "done",
            data: {},
          }]),
    }, async (h) => {
      const id = (await h.openPull(501, 1)).body.reviewId as string;
      const done = await h.waitForStatus(id, ["completed", "failed"]);
      assert.equal(done.status, "completed", done.errorMessage);
      assert.equal(done.attempts, 2);
      assert.equal(done.summary, "second time");
      assert.deepEqual(h.agent.sessions.map((s) => s.headers.get("idempotency-key")), [
        `${id}:1`,
        `${id}:2`,
      ]);
    }),
);

suite(
  "an agent error event fails the review with its message",
  (transport) =>
    withHarness(transport, {
      script: () => sseResponse([{ event: "error", data: { message: "model refused the diff" } }]),
    }, async (h) => {
      const id = (await h.openPull(601, 1)).body.reviewId as string;
      const done = await h.waitForStatus(id, ["completed", "failed"]);
      assert.equal(done.status, "failed");
      assert.equal(done.errorMessage, "model refused the diff");
      assert.equal(done.terminalReason, "agent_error");
      assert.equal(done.attempts, 1);
      // The pull request is told why, once.
      assert.equal(h.github.comments.length, 1);
      assert.match(h.github.comments[0].body, /failed: model refused the diff/);
      const usage = await h.api("GET", "/owners/org/601");
      assert.equal(usage.body.active, 0);
    }),
);

suite(
  "retryable failures stop after MAX_ATTEMPTS with the last error",
  (transport) =>
    withHarness(transport, {
      env: { MAX_ATTEMPTS: "2" },
      script: () => new Response("down", { status: 502 }),
    }, async (h) => {
      const id = (await h.openPull(602, 1)).body.reviewId as string;
      const done = await h.waitForStatus(id, ["failed"]);
      assert.equal(done.attempts, 2);
      assert.match(done.errorMessage ?? "", /502/);
      assert.equal(h.agent.sessions.length, 2);
    }),
);

suite("a synchronize push supersedes the running review of the PR", (transport) => {
  const { script, release } = holdFirstSession([
    { event: "status", data: { message: "reading" } },
    { event: "done", data: {} },
  ]);
  return withHarness(transport, { script }, async (h) => {
    const first = (await h.openPull(701, 9, sha(1))).body.reviewId as string;
    await h.waitForStatus(first, ["running"]);
    await waitFor("first session open", () => h.agent.open === 1 ? true : undefined);
    h.github.setPull({ owner: "owner701", repo: "service", number: 9, headSha: sha(2) });
    const sync = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ action: "synchronize", ownerId: 701, number: 9, headSha: sha(2) }),
    );
    const second = sync.body.reviewId as string;
    assert.notEqual(second, first);
    const old = await h.waitForStatus(first, ["cancelled"]);
    assert.equal(old.terminalReason, "superseded");
    await waitFor("first stream aborted", () => h.agent.open === 0 ? true : undefined, 5_000);
    assert.equal((await h.waitForStatus(second, ["completed"])).status, "completed");
    release();
    assert.equal(h.github.comments.length, 1);
    assert.equal((await h.api("GET", "/owners/org/701")).body.active, 0);
  });
});

suite(
  "a later head of the same PR updates the comment in place",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      const a = (await h.openPull(702, 4, sha(10))).body.reviewId as string;
      await h.waitForStatus(a, ["completed"]);
      const b = (await h.openPull(702, 4, sha(11))).body.reviewId as string;
      const done = await h.waitForStatus(b, ["completed"]);
      assert.equal(h.github.comments.length, 1);
      assert.equal(h.github.comments[0].updatedCount, 1);
      assert.equal(done.commentId, h.github.comments[0].id);
      assert.match(h.github.comments[0].body, new RegExp(sha(11).slice(0, 7)));
    }),
);

suite("cancel: a pending review never runs, a running one is aborted and frees its slot", (
  transport,
) => {
  const { script, release } = holdFirstSession();
  return withHarness(transport, { env: { MAX_CONCURRENT_PER_OWNER: "1" }, script }, async (h) => {
    const running = (await h.openPull(801, 1)).body.reviewId as string;
    const pending = (await h.openPull(801, 2)).body.reviewId as string;
    const third = (await h.openPull(801, 3)).body.reviewId as string;
    await h.waitForStatus(running, ["running"]);
    assert.equal((await h.review(pending)).status, "pending");
    const c1 = await h.api("POST", `/reviews/${pending}/cancel`, { reason: "not needed" });
    assert.deepEqual([c1.status, c1.body.status, c1.body.errorMessage], [
      200,
      "cancelled",
      "not needed",
    ]);
    await waitFor("session open", () => h.agent.open === 1 ? true : undefined);
    const c2 = await h.api("POST", `/reviews/${running}/cancel`);
    assert.equal(c2.status, 200);
    await waitFor("stream aborted", () => h.agent.open === 0 ? true : undefined, 5_000);
    assert.equal((await h.waitForStatus(third, ["completed"])).status, "completed");
    release();
    const again = await h.api("POST", `/reviews/${running}/cancel`);
    assert.equal(again.status, 409);
    assert.equal(h.agent.sessions.filter((s) => s.body.reviewId === pending).length, 0);
    assert.equal((await h.api("GET", "/owners/org/801")).body.active, 0);
    assert.equal((await h.api("POST", "/reviews/nope/cancel")).status, 404);
  });
});

suite(
  "POST /review creates an idempotent review that uses its own agent token",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      h.github.setPull({ owner: "acme", repo: "api", number: 5, headSha: sha(5) });
      const body = {
        reviewId: "rev-123",
        authToken: "per-review-token",
        owner: { type: "user", id: 77, userId: "u-77" },
        sessionInput: { githubRepo: "acme/api", pullNumber: 5, prompt: "focus on SQL", extra: 1 },
      };
      const a = await h.api("POST", "/review", body);
      assert.deepEqual([a.status, a.body.reviewId], [202, "rev-123"]);
      const b = await h.api("POST", "/review", body);
      assert.deepEqual([b.status, b.body.reviewId], [202, "rev-123"]);
      const done = await h.waitForStatus("rev-123", ["completed"]);
      assert.equal(done.headSha, sha(5));
      assert.equal("authToken" in done, false);
      assert.equal(h.agent.sessions.length, 1);
      const s = h.agent.sessions[0];
      assert.equal(s.headers.get("authorization"), "Bearer per-review-token");
      assert.equal(s.body.prompt, "focus on SQL");
      assert.equal((s.body.sessionInput as Record<string, unknown>).extra, 1);
      const bad = await h.api("POST", "/review", { reviewId: "x" });
      assert.equal(bad.status, 400);
      assert.equal(typeof bad.body.error, "string");
      assert.equal((await h.api("POST", "/review", body, null)).status, 401);
      assert.equal((await h.api("POST", "/review", body, "wrong")).status, 401);
      const list = await h.api("GET", "/reviews?owner=77&status=completed");
      assert.deepEqual((list.body.reviews as Array<{ id: string }>).map((r) => r.id), ["rev-123"]);
      assert.equal((await h.api("GET", "/reviews/unknown")).status, 404);
    }),
);

suite("hundreds of findings are stored and returned whole", (transport) =>
  withHarness(transport, {
    script: () =>
      sseResponse([
        ...Array.from({ length: 300 }, (_, i) => ({
          event: "finding",
          data: {
            severity: (["critical", "warning", "info"] as const)[i % 3],
            file_path: `src/file${i}.ts`,
            line_number: i,
            title: `finding ${i}`,
            description: "x".repeat(400),
            agent_type: "security",
          },
        })),
        { event: "done", data: {} },
      ]),
  }, async (h) => {
    const id = (await h.openPull(901, 1)).body.reviewId as string;
    const done = await h.waitForStatus(id, ["completed", "failed"], 15_000);
    assert.equal(done.status, "completed", done.errorMessage);
    assert.equal((done.findings as unknown[]).length, 300);
    assert.ok(h.github.comments[0].body.length <= 65_536);
  }));
