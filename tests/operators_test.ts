/**
 * What operators do through the API: per-owner limits (`PUT/DELETE /owners/:type/:id/limit`,
 * `GET /owners`, `GET /stats`), `POST /reviews/:id/retry`, and the repository filter.
 */
import assert from "node:assert/strict";
import type { ReviewRecord } from "../kv/records.ts";
import { type AgentScript, reviewScript } from "./fakes/agent.ts";
import { heldSessions } from "./operator_helpers.ts";
import { pullRequestPayload, sha, waitFor, withHarness } from "./harness.ts";

type Usage = { limit: number; customLimit: boolean; active: number; pending: number };

Deno.test("raising an owner's limit dispatches its waiting reviews at once; lowering holds new ones", async () => {
  const held = heldSessions();
  await withHarness("kv-table", {
    script: held.script,
    env: { MAX_CONCURRENT_PER_OWNER: "1", FAST_PATH: "true" },
  }, async (h) => {
    for (const n of [1, 2, 3]) assert.equal((await h.openPull(7, n)).status, 202);
    await waitFor("one session", () => h.agent.open === 1 ? true : undefined);
    let owner = (await h.api("GET", "/owners/org/7")).body as unknown as Usage;
    assert.deepEqual(
      {
        limit: owner.limit,
        active: owner.active,
        pending: owner.pending,
      },
      { limit: 1, active: 1, pending: 2 },
    );

    const raised = await h.api("PUT", "/owners/org/7/limit", { limit: 3 });
    assert.equal(raised.status, 200);
    owner = raised.body as unknown as Usage;
    // The commit that raised the limit claimed both waiting reviews.
    assert.deepEqual([owner.limit, owner.customLimit, owner.active, owner.pending], [
      3,
      true,
      3,
      0,
    ]);
    const started = Date.now();
    await waitFor("three sessions", () => h.agent.open === 3 ? true : undefined, 3_000);
    assert.ok(Date.now() - started < 1_000, "raised limit must not wait for a sweep");

    const overview = await h.api("GET", "/owners");
    const listed = (overview.body.owners as Array<Usage & { owner: { id: string } }>)
      .find((o) => o.owner.id === "7")!;
    assert.deepEqual([listed.limit, listed.customLimit, listed.active], [3, true, 3]);

    // Lowering stops nothing; a new review waits until the owner is under the new limit.
    const lowered = await h.api("PUT", "/owners/org/7/limit", { limit: 1 });
    assert.deepEqual(
      [(lowered.body as unknown as Usage).active, (lowered.body as unknown as Usage).limit],
      [3, 1],
    );
    assert.equal((await h.openPull(7, 4)).status, 202);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.agent.open, 3);
    const stats = await h.api("GET", "/stats");
    assert.equal(stats.status, 200);
    assert.equal(stats.body.pending, 1);
    assert.equal(stats.body.queueLagMs, 0, "a review waiting for its owner's limit is not lag");
    assert.ok((stats.body.oldestPendingMs as number) >= 300);

    held.release();
    const ids = await waitFor("all four reviewed", async () => {
      const list = await h.api("GET", "/reviews?owner=org:7&limit=10");
      const reviews = list.body.reviews as ReviewRecord[];
      return reviews.length === 4 && reviews.every((r) => r.status === "completed")
        ? reviews
        : undefined;
    }, 10_000);
    assert.equal(ids.length, 4);
    assert.ok(h.agent.maxOpenByRepoOwner.get("owner7")! <= 3);

    const reset = await h.api("DELETE", "/owners/org/7/limit");
    assert.deepEqual(
      [(reset.body as unknown as Usage).limit, (reset.body as unknown as Usage).customLimit],
      [1, false],
    );
  });
});

Deno.test("owner limits: bad input is refused and writes nothing; the token is required", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    for (const body of [{ limit: -1 }, { limit: 101 }, { limit: 1.5 }, { limit: "4" }, {}]) {
      const res = await h.api("PUT", "/owners/org/1/limit", body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(String(res.body.error), /limit must be an integer from 0 to 100/);
    }
    assert.equal((await h.api("PUT", "/owners/team/1/limit", { limit: 2 })).status, 400);
    assert.equal((await h.api("PUT", "/owners/org/a%20b/limit", { limit: 2 })).status, 400);
    assert.equal((await h.api("PUT", "/owners/org/1/limit", { limit: 2 }, null)).status, 401);
    assert.equal((await h.api("GET", "/owners", undefined, "wrong")).status, 401);
    assert.equal((await h.api("GET", "/stats", undefined, null)).status, 401);
    const entries = await Array.fromAsync(h.kv.list({ prefix: ["owners"] }));
    assert.equal(entries.length, 0);
    assert.deepEqual((await h.api("GET", "/owners")).body, { owners: [] });
  });
});

Deno.test("a limit of 0 pauses an owner until it is raised", async () => {
  await withHarness("kv-queue", { env: { FAST_PATH: "true" } }, async (h) => {
    assert.equal((await h.api("PUT", "/owners/user/9/limit", { limit: 0 })).status, 200);
    h.github.setPull({ owner: "owner9", repo: "service", number: 1, headSha: sha(1) });
    const sent = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ ownerId: 9, ownerType: "User", number: 1, headSha: sha(1) }),
    );
    const id = sent.body.reviewId as string;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await h.review(id)).status, "pending");
    const listed = (await h.api("GET", "/owners")).body.owners as Array<Usage>;
    assert.equal(listed.length, 1);
    assert.equal(listed[0].limit, 0);
    await h.api("PUT", "/owners/user/9/limit", { limit: 2 });
    await h.waitForStatus(id, ["completed"]);
  });
});

Deno.test("POST /reviews/:id/retry: a failed review gets one new review through the slots", async () => {
  let fail = true;
  const script: AgentScript = (s, ctl) =>
    fail ? new Response("bad request", { status: 400 }) : reviewScript()(s, ctl);
  await withHarness("kv-queue", { script, env: { MAX_ATTEMPTS: "1" } }, async (h) => {
    const id = (await h.openPull(3, 5)).body.reviewId as string;
    const failed = await h.waitForStatus(id, ["failed"]);
    assert.equal(failed.status, "failed");

    assert.equal((await h.api("POST", `/reviews/${id}/retry`, undefined, null)).status, 401);
    assert.equal((await h.api("POST", "/reviews/nope/retry")).status, 404);

    fail = false;
    const first = await h.api("POST", `/reviews/${id}/retry`);
    assert.equal(first.status, 202);
    assert.equal(first.body.id, `${id}-retry-1`);
    assert.deepEqual(first.body.retry, { of: id, root: id, number: 1 });
    // A second click returns the same retry, not another review.
    const again = await h.api("POST", `/reviews/${id}/retry`);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, `${id}-retry-1`);

    const done = await h.waitForStatus(`${id}-retry-1`, ["completed"]);
    assert.equal(done.headSha, sha(5));
    assert.equal(h.agent.sessions.length, 2);
    assert.equal((await h.review(id)).status, "failed", "the original stays as it ended");

    const completed = await h.api("POST", `/reviews/${id}-retry-1/retry`);
    assert.equal(completed.status, 409);
    assert.match(String(completed.body.error), /only failed or cancelled reviews can be retried/);
  });
});

Deno.test("retry of a cancelled review, and of a retry, numbers the chain", async () => {
  const held = heldSessions();
  await withHarness("kv-queue", {
    script: held.script,
    env: { MAX_CONCURRENT_PER_OWNER: "1" },
  }, async (h) => {
    await h.openPull(4, 1);
    const waiting = (await h.openPull(4, 2)).body.reviewId as string;
    const cancelled = await h.api("POST", `/reviews/${waiting}/cancel`, {});
    assert.equal(cancelled.body.status, "cancelled");
    const retried = await h.api("POST", `/reviews/${waiting}/retry`);
    assert.equal(retried.status, 202);
    assert.equal(retried.body.status, "pending", "the owner's one slot is taken");
    const second = await h.api("POST", `/reviews/${waiting}-retry-1/cancel`, {});
    assert.equal(second.body.status, "cancelled");
    const chained = await h.api("POST", `/reviews/${waiting}-retry-1/retry`);
    assert.equal(chained.body.id, `${waiting}-retry-2`);
    held.release();
    await h.waitForStatus(`${waiting}-retry-2`, ["completed"]);
  });
});

Deno.test("GET /reviews?repo= lists one repository's reviews; a bad repo is a 400", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    await h.openPull(5, 1);
    h.github.setPull({ owner: "owner5", repo: "other", number: 2, headSha: sha(2) });
    await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ ownerId: 5, repo: "other", number: 2, headSha: sha(2) }),
    );
    const res = await h.api("GET", "/reviews?repo=OWNER5/other");
    const reviews = res.body.reviews as ReviewRecord[];
    assert.deepEqual(reviews.map((r) => r.repo), ["owner5/other"]);
    assert.equal((await h.api("GET", "/reviews?repo=nope")).status, 400);
  });
});
