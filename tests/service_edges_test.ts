/**
 * Edge flows through the real HTTP server, once per transport: posting retries, GitHub failures,
 * moved or closed PRs, limits and disabled routes, paging, the status callback.
 */
import assert from "node:assert/strict";
import { holdFirstSession, sseResponse } from "./fakes/agent.ts";
import {
  type Harness,
  pullRequestPayload,
  sha,
  startHarness,
  transportSuite as suite,
  waitFor,
  withHarness,
} from "./harness.ts";

/** Opens a PR and returns the id of the review its webhook created. */
async function openPull(h: Harness, ownerId: number, number: number, headSha?: string) {
  const res = await h.openPull(ownerId, number, headSha);
  assert.equal(res.status, 202);
  return res.body.reviewId as string;
}

suite(
  "a failed comment post retries the posting only, not the agent session",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      h.github.failNext("comment", 502);
      const id = await openPull(h, 11, 1);
      const done = await h.waitForStatus(id, ["completed", "failed"]);
      assert.equal(done.status, "completed", done.errorMessage);
      assert.equal(done.attempts, 2);
      assert.equal(h.agent.sessions.length, 1);
      assert.equal(h.github.comments.length, 1);
    }),
);

suite(
  "a pull request GitHub does not know fails as github_error without retries",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      const res = await h.sendWebhook(
        "pull_request",
        pullRequestPayload({ ownerId: 12, number: 5, headSha: sha(5) }),
      );
      const done = await h.waitForStatus(res.body.reviewId as string, ["failed"]);
      assert.equal(done.terminalReason, "github_error");
      assert.match(done.errorMessage ?? "", /404/);
      assert.equal(done.attempts, 1);
      assert.equal(h.agent.sessions.length, 0);
    }),
);

suite("a head that moved on before the run supersedes the review; a closed PR cancels it", (
  transport,
) =>
  withHarness(transport, {}, async (h) => {
    h.github.setPull({ owner: "owner13", repo: "service", number: 1, headSha: sha(99) });
    const moved = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ ownerId: 13, number: 1, headSha: sha(1) }),
    );
    const a = await h.waitForStatus(moved.body.reviewId as string, ["cancelled", "completed"]);
    assert.equal(a.terminalReason, "superseded");
    // The head GitHub reports now still gets its review, though its webhook never came.
    const page = await h.api("GET", "/reviews?owner=org:13");
    const followUp = (page.body.reviews as Array<{ id: string; headSha: string }>)
      .find((r) => r.headSha === sha(99));
    assert.ok(followUp, "a review of the new head exists");
    assert.equal((await h.waitForStatus(followUp.id, ["completed"])).status, "completed");
    h.github.setPull({
      owner: "owner13",
      repo: "service",
      number: 2,
      headSha: sha(2),
      state: "closed",
    });
    const closed = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ ownerId: 13, number: 2, headSha: sha(2) }),
    );
    const b = await h.waitForStatus(closed.body.reviewId as string, ["cancelled", "completed"]);
    assert.deepEqual([b.terminalReason, b.errorMessage], ["pr_closed", "pull request is closed"]);
    assert.deepEqual(h.agent.sessions.map((s) => s.body.headSha), [sha(99)]);
  }));

suite("a push supersedes a pending review, which never runs", (transport) => {
  const { script, release } = holdFirstSession();
  return withHarness(transport, { env: { MAX_CONCURRENT_PER_OWNER: "1" }, script }, async (h) => {
    const blocker = await openPull(h, 14, 1);
    await waitFor("blocker running", () => h.agent.open === 1 ? true : undefined);
    const old = await openPull(h, 14, 2, sha(20));
    assert.equal((await h.review(old)).status, "pending");
    const fresh = await openPull(h, 14, 2, sha(21));
    const superseded = await h.review(old);
    assert.deepEqual([superseded.status, superseded.terminalReason], ["cancelled", "superseded"]);
    assert.deepEqual((await h.api("GET", "/owners/org/14")).body.pending, 1);
    release();
    await h.waitForStatus(blocker, ["completed"]);
    await h.waitForStatus(fresh, ["completed"]);
    assert.equal(h.agent.sessions.filter((s) => s.body.reviewId === old).length, 0);
  });
});

suite(
  "disabled routes answer 503; oversized webhooks 413; health 200",
  (transport) =>
    withHarness(
      transport,
      { env: { GITHUB_WEBHOOK_SECRET: "", BACKEND_AUTH_TOKEN: "" } },
      async (h) => {
        const hook = await h.sendWebhook("ping", {}, { secret: "x" });
        assert.equal(hook.status, 503);
        assert.match(String(hook.body.error), /GITHUB_WEBHOOK_SECRET/);
        const api = await h.api("GET", "/reviews");
        assert.equal(api.status, 503);
        assert.match(String(api.body.error), /BACKEND_AUTH_TOKEN/);
        const health = (await h.api("GET", "/health", undefined, null)).body;
        assert.equal(health.ok, true);
        assert.equal(health.queueLagMs, 0);
      },
    ),
);

suite(
  "a webhook body over 25 MiB is refused with 413 and stores nothing",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      const big = JSON.stringify({ action: "opened", padding: "x".repeat(25 * 1024 * 1024) });
      const res = await h.sendWebhook("pull_request", null, { rawBody: big });
      assert.equal(res.status, 413);
      assert.deepEqual((await h.api("GET", "/reviews")).body.reviews, []);
    }),
);

suite(
  "GET /reviews pages newest first with a cursor",
  (transport) =>
    withHarness(transport, {}, async (h) => {
      const ids: string[] = [];
      for (let n = 1; n <= 5; n++) ids.push(await openPull(h, 15, n));
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = `/reviews?owner=org:15&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
        const page = await h.api("GET", query);
        assert.equal(page.status, 200);
        seen.push(...(page.body.reviews as Array<{ id: string }>).map((r) => r.id));
        cursor = page.body.cursor as string | null;
      } while (cursor);
      assert.deepEqual(seen, [...ids].reverse());
      assert.equal((await h.api("GET", "/reviews?limit=0")).status, 400);
      const mangled = await h.api("GET", "/reviews?owner=org:15&cursor=!!!");
      assert.deepEqual([mangled.status, mangled.body.error], [
        400,
        "invalid cursor: pass back the cursor of the same listing",
      ]);
      assert.equal((await h.api("GET", "/reviews?status=bogus")).status, 400);
    }),
);

Deno.test("the status callback receives every status change with the internal secret", async () => {
  const calls: Array<{ path: string; secret: string | null; body: { status: string } }> = [];
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    calls.push({
      path: new URL(req.url).pathname,
      secret: req.headers.get("x-internal-secret"),
      body: await req.json(),
    });
    return new Response(null, { status: 204 });
  });
  const h = await startHarness({
    env: { API_URL: `http://127.0.0.1:${backend.addr.port}`, INTERNAL_API_SECRET: "cb-secret" },
  });
  try {
    const id = await openPull(h, 16, 1);
    await h.waitForStatus(id, ["completed"]);
    await waitFor(
      "completed callback",
      () => calls.some((c) => c.body.status === "completed") ? true : undefined,
    );
    assert.ok(calls.every((c) => c.path === `/api/internal/code-review-status/${id}`));
    assert.ok(calls.every((c) => c.secret === "cb-secret"));
    assert.deepEqual(calls.map((c) => c.body.status), ["queued", "running", "completed"]);
  } finally {
    await h.close();
    await backend.shutdown();
  }
});

Deno.test("POST /review refuses a sessionInput that would not fit a KV value, and stores nothing", async () => {
  const h = await startHarness();
  try {
    const res = await h.api("POST", "/review", {
      reviewId: "too-big",
      authToken: "t",
      owner: { type: "org", id: "1" },
      sessionInput: { githubRepo: "o/r", pullNumber: 1, prompt: "😀".repeat(10_000) },
    });
    assert.equal(res.status, 400);
    assert.match(String(res.body.error), /sessionInput/);
    assert.equal((await h.api("GET", "/reviews/too-big")).status, 404);
  } finally {
    await h.close();
  }
});

Deno.test("an agent summary and error message of any size still fit the review record", async () => {
  const huge = "😀".repeat(30_000);
  const h = await startHarness({
    script: (s) =>
      s.body.pullNumber === 1
        ? sseResponse([{ event: "summary", data: { text: huge.slice(0, 20_000) } }, {
          event: "done",
          data: {},
        }])
        : sseResponse([{ event: "error", data: { message: huge.slice(0, 10_000) } }]),
  });
  try {
    const a = await h.waitForStatus(await openPull(h, 17, 1), ["completed", "failed"]);
    assert.equal(a.status, "completed", a.errorMessage);
    assert.ok(new TextEncoder().encode(a.summary).length <= 16_384);
    const b = await h.waitForStatus(await openPull(h, 17, 2), ["completed", "failed"]);
    assert.equal(b.status, "failed");
    assert.ok(new TextEncoder().encode(b.errorMessage).length <= 2_048);
  } finally {
    await h.close();
  }
});

Deno.test("GET /reviews?owner=<id> lists both owner types; type:id lists one; no lease token shows", async () => {
  const { script, release } = holdFirstSession();
  const h = await startHarness({ script });
  try {
    h.github.setPull({ owner: "acme", repo: "api", number: 1, headSha: sha(1) });
    for (const type of ["user", "org"]) {
      const res = await h.api("POST", "/review", {
        reviewId: `rev-${type}`,
        authToken: "t",
        owner: { type, id: "77" },
        sessionInput: { githubRepo: "acme/api", pullNumber: 1 },
      });
      assert.equal(res.status, 202);
    }
    const ids = async (query: string) =>
      ((await h.api("GET", `/reviews?${query}`)).body.reviews as Array<{ id: string }>).map((r) =>
        r.id
      );
    assert.deepEqual(await ids("owner=77"), ["rev-org", "rev-user"]);
    assert.deepEqual(await ids("owner=user:77"), ["rev-user"]);
    assert.deepEqual(await ids("owner=org:77"), ["rev-org"]);
    assert.deepEqual(await ids("owner=78"), []);
    assert.equal((await h.api("GET", "/reviews?owner=team:77")).status, 400);
    const running = await h.waitForStatus("rev-user", ["running"]);
    assert.match(String(running.lease?.instance), /^instance-/);
    assert.equal("token" in running.lease!, false);
    release();
  } finally {
    await h.close();
  }
});
