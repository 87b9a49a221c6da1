/**
 * Attacks on `pull_request.closed`: redelivery after a reopen, more unfinished reviews than one
 * read returns, hostile payloads, webhooks racing the close, deferred reviews, and a close while
 * the running review posts its comment.
 */
import assert from "node:assert/strict";
import { sseResponse } from "./fakes/agent.ts";
import {
  BACKEND_TOKEN,
  type Harness,
  pullRequestPayload,
  sha,
  waitFor,
  withHarness,
} from "./harness.ts";

const TERMINAL = ["completed", "failed", "cancelled"];

/** Every session held until `release()` (then `done`); sessions opened after release end at once. */
function heldSessions() {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  return {
    script: () => sseResponse([{ event: "done", data: {} }], { holdUntil: gate }),
    release,
  };
}

function closedPayload(ownerId: number, number: number, headSha = sha(number)) {
  return pullRequestPayload({ action: "closed", ownerId, number, headSha, state: "closed" });
}

async function everything(kv: Deno.Kv) {
  return await Array.fromAsync(kv.list({ prefix: [] }));
}

async function ownerActive(h: Harness, ownerId: number) {
  const res = await h.api("GET", `/owners/org/${ownerId}`);
  const { limit, active, pending } = res.body as Record<string, number>;
  return { limit, active, pending };
}

Deno.test("attack close: a redelivered close after a reopen leaves the reopened pull request's review alone", async () => {
  const held = heldSessions();
  await withHarness("kv-queue", { script: held.script }, async (h) => {
    const first = (await h.openPull(1, 1)).body.reviewId as string;
    await waitFor("the first session", () => h.agent.open === 1 ? true : undefined);
    h.github.setPull({ owner: "owner1", repo: "service", number: 1, state: "closed" });
    const closeBody = JSON.stringify(closedPayload(1, 1));
    const deliveryId = crypto.randomUUID();
    const closed = await h.sendWebhook("pull_request", null, { rawBody: closeBody, deliveryId });
    assert.deepEqual(closed.body, { status: "closed", stopped: 1 });
    const a = await h.waitForStatus(first, ["cancelled"]);
    assert.equal(a.terminalReason, "pr_closed");

    // Reopened: reviewed again.
    h.github.setPull({ owner: "owner1", repo: "service", number: 1, state: "open" });
    const reopened = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ action: "reopened", ownerId: 1, number: 1, headSha: sha(1) }),
    );
    assert.equal(reopened.status, 202);
    const second = reopened.body.reviewId as string;
    assert.notEqual(second, first);
    await waitFor("the reopened review's session", () => h.agent.open === 1 ? true : undefined);

    // GitHub redelivers the old close (same delivery id, same body): it must be harmless.
    const again = await h.sendWebhook("pull_request", null, { rawBody: closeBody, deliveryId });
    const r = await h.review(second);
    held.release();
    assert.equal(r.cancelRequested, undefined, "the redelivered close stopped the reopened review");
    assert.deepEqual(again.body, { status: "closed", stopped: 0 });
    const done = await h.waitForStatus(second, TERMINAL);
    assert.equal(done.status, "completed");
    assert.equal(h.github.comments.length, 1);
  });
});

Deno.test("attack close: a pull request with 230 unfinished reviews has all of them stopped by one close", async () => {
  const held = heldSessions();
  await withHarness(
    "kv-queue",
    { script: held.script, env: { MAX_CONCURRENT_PER_OWNER: "1" } },
    async (h) => {
      h.github.setPull({ owner: "owner1", repo: "service", number: 5, headSha: sha(5) });
      const ids: string[] = [];
      for (let i = 0; i < 230; i++) {
        const res = await h.api("POST", "/review", {
          reviewId: `api-${String(i).padStart(4, "0")}`,
          authToken: "agent-bearer",
          owner: { type: "org", id: "1", login: "owner1" },
          sessionInput: { githubRepo: "owner1/service", pullNumber: 5 },
        });
        assert.equal(res.status, 202);
        ids.push(res.body.reviewId as string);
      }
      await waitFor("the first session", () => h.agent.open === 1 ? true : undefined);
      h.github.setPull({ owner: "owner1", repo: "service", number: 5, state: "closed" });
      const closed = await h.sendWebhook("pull_request", closedPayload(1, 5));
      assert.equal(closed.status, 200);
      const left: string[] = [];
      for (const id of ids) {
        const r = await h.review(id);
        if (!r.cancelRequested && !TERMINAL.includes(r.status)) left.push(`${id}:${r.status}`);
      }
      held.release();
      assert.deepEqual(
        [closed.body.stopped, left.length],
        [230, 0],
        `left unstopped: ${left.slice(0, 5).join(", ")}…`,
      );
    },
  );
});

Deno.test("attack close (withstood): hostile closed payloads are 400 and write nothing", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    const base = closedPayload(1, 1) as Record<string, unknown> & {
      repository: Record<string, unknown>;
    };
    const withRepo = (full_name: unknown) => ({
      ...base,
      repository: { ...base.repository, full_name },
    });
    const cases: Array<[string, unknown]> = [
      ["no repository", { ...base, repository: undefined }],
      ["repository null", { ...base, repository: null }],
      ["no number", { ...base, number: undefined }],
      ["number 0", { ...base, number: 0 }],
      ["number -1", { ...base, number: -1 }],
      ["number 2^53", { ...base, number: 2 ** 53 }],
      ["number 2^31+1", { ...base, number: 2 ** 31 + 1 }],
      ["number 1.5", { ...base, number: 1.5 }],
      ["number string", { ...base, number: "1" }],
      ["huge repository name", withRepo("o/" + "x".repeat(1_000_000))],
      ["201-char name", withRepo("o/" + "x".repeat(199))],
      ["no slash", withRepo("noslash")],
      ["two slashes", withRepo("a/b/c")],
      ["space", withRepo("a/b c")],
      ["empty owner", withRepo("/b")],
      ["not a string", withRepo(42)],
      ["action number", { ...base, action: 5 }],
      ["body null", null],
      ["body array", [base]],
    ];
    for (const [what, payload] of cases) {
      const raw = payload === undefined ? "null" : JSON.stringify(payload);
      const res = await h.sendWebhook("pull_request", null, { rawBody: raw });
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body).slice(0, 200)}`);
      assert.ok(JSON.stringify(res.body).length < 10_000, `${what}: error body is bounded`);
    }
    // A valid close of a pull request the service never saw writes nothing either.
    const ok = await h.sendWebhook("pull_request", withRepo("o/" + "x".repeat(198)));
    assert.deepEqual([ok.status, ok.body], [200, { status: "closed", stopped: 0 }]);
    assert.deepEqual(await everything(h.kv), []);
  });
});

Deno.test("attack close (withstood): a late synchronize after the close never posts on the closed pull request", async () => {
  const held = heldSessions();
  await withHarness("kv-queue", { script: held.script }, async (h) => {
    const first = (await h.openPull(1, 1)).body.reviewId as string;
    await waitFor("the first session", () => h.agent.open === 1 ? true : undefined);
    const pushedAt = Date.now();
    // The author pushes sha(2), then sha(3), then closes; GitHub delivers the pushes late.
    h.github.setPull({
      owner: "owner1",
      repo: "service",
      number: 1,
      headSha: sha(3),
      state: "closed",
    });
    const closed = await h.sendWebhook("pull_request", closedPayload(1, 1, sha(3)));
    assert.equal(closed.body.stopped, 1);
    held.release();
    assert.equal((await h.waitForStatus(first, TERMINAL)).terminalReason, "pr_closed");
    const late = [];
    for (const [head, at] of [[sha(3), pushedAt + 2], [sha(2), pushedAt + 1]] as const) {
      const res = await h.sendWebhook(
        "pull_request",
        pullRequestPayload({
          action: "synchronize",
          ownerId: 1,
          number: 1,
          headSha: head,
          updatedAt: at,
        }),
      );
      assert.equal(res.status, 202);
      late.push(res.body.reviewId as string);
    }
    for (const id of late) await h.waitForStatus(id, TERMINAL);
    // Follow-up reviews the pipeline submitted end too.
    await waitFor("every review of the pull request ends", async () => {
      const list = await h.api("GET", "/reviews?limit=100");
      const reviews = list.body.reviews as Array<{ status: string }>;
      return reviews.every((r) => TERMINAL.includes(r.status)) ? true : undefined;
    });
    const list = (await h.api("GET", "/reviews?limit=100")).body.reviews as Array<
      { status: string; terminalReason: string }
    >;
    assert.ok(list.every((r) => r.status === "cancelled"), JSON.stringify(list));
    assert.equal(h.github.comments.length, 0, "a comment landed on the closed pull request");
    assert.equal((await ownerActive(h, 1)).active, 0);
  });
});

Deno.test("attack close (withstood): synchronize and close racing on 12 pull requests post nothing", async () => {
  await withHarness("kv-table", { env: { MAX_CONCURRENT_PER_OWNER: "2" } }, async (h) => {
    const prs = Array.from({ length: 12 }, (_, i) => i + 1);
    for (const n of prs) {
      h.github.setPull({
        owner: "owner1",
        repo: "service",
        number: n,
        headSha: sha(100 + n),
        state: "closed",
      });
    }
    await Promise.all(prs.map(async (n) => {
      const sync = h.sendWebhook(
        "pull_request",
        pullRequestPayload({ action: "synchronize", ownerId: 1, number: n, headSha: sha(100 + n) }),
      );
      const close = h.sendWebhook("pull_request", closedPayload(1, n, sha(100 + n)));
      const [s, c] = await Promise.all([sync, close]);
      assert.equal(s.status, 202);
      assert.equal(c.status, 200);
    }));
    await waitFor("every review ends", async () => {
      const list = await h.api("GET", "/reviews?limit=100");
      const reviews = list.body.reviews as Array<{ status: string }>;
      return reviews.length >= 12 && reviews.every((r) => TERMINAL.includes(r.status))
        ? true
        : undefined;
    }, 20_000);
    assert.equal(h.github.comments.length, 0);
    assert.deepEqual(await ownerActive(h, 1), { limit: 2, active: 0, pending: 0 });
  });
});

Deno.test("attack close (withstood): a review deferred for MAX_CONCURRENT_TOTAL stops at once and frees its slot", async () => {
  const held = heldSessions();
  await withHarness("kv-queue", {
    script: held.script,
    env: { MAX_CONCURRENT_TOTAL: "1", AGENT_LIMIT_WAIT_MS: "60000", MAX_RETRY_DELAY_MS: "60000" },
  }, async (h) => {
    const a = (await h.openPull(1, 1)).body.reviewId as string;
    await waitFor("the first session", () => h.agent.open === 1 ? true : undefined);
    const b = (await h.openPull(2, 2)).body.reviewId as string;
    const deferred = await waitFor("the second review deferred", async () => {
      const r = await h.review(b);
      return r.status === "queued" && (r.deferrals ?? 0) >= 1 ? r : undefined;
    });
    assert.equal(deferred.status, "queued");
    h.github.setPull({ owner: "owner2", repo: "service", number: 2, state: "closed" });
    const closed = await h.sendWebhook("pull_request", closedPayload(2, 2));
    assert.equal(closed.body.stopped, 1);
    const r = await h.review(b);
    assert.deepEqual([r.status, r.terminalReason], ["cancelled", "pr_closed"]);
    assert.deepEqual(await ownerActive(h, 2), { limit: 4, active: 0, pending: 0 });
    held.release();
    assert.equal((await h.waitForStatus(a, TERMINAL)).status, "completed");
    assert.equal(h.github.comments.length, 1);
  });
});

Deno.test("attack close (withstood): a close while the comment is being posted: one comment, a sane end, slot freed", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    const hold = h.github.holdNext("comment");
    const id = (await h.openPull(1, 1)).body.reviewId as string;
    await hold.started;
    h.github.setPull({ owner: "owner1", repo: "service", number: 1, state: "closed" });
    const closed = await h.sendWebhook("pull_request", closedPayload(1, 1));
    assert.equal(closed.body.stopped, 1);
    hold.release();
    const r = await h.waitForStatus(id, TERMINAL);
    assert.ok(
      (r.status === "completed" && r.terminalReason === "completed") ||
        (r.status === "cancelled" && r.terminalReason === "pr_closed"),
      `${r.status}/${r.terminalReason}`,
    );
    assert.ok(h.github.comments.length <= 1);
    assert.deepEqual(await ownerActive(h, 1), { limit: 4, active: 0, pending: 0 });
    const pointer = await h.kv.get<{ claim?: unknown; commentId?: number }>([
      "pr_comments",
      "owner1/service",
      1,
    ]);
    assert.equal(pointer.value?.claim, undefined, "the publish claim is released");
    if (r.status === "completed") assert.equal(pointer.value?.commentId, r.commentId);
  });
});

Deno.test("attack close (withstood): a close during an ambiguous comment create, then reopen: still one comment", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    const hold = h.github.holdNext("comment");
    h.github.failNext("comment", 502, 1, { afterEffect: true });
    const id = (await h.openPull(1, 1)).body.reviewId as string;
    await hold.started;
    h.github.setPull({ owner: "owner1", repo: "service", number: 1, state: "closed" });
    const closed = await h.sendWebhook("pull_request", closedPayload(1, 1));
    assert.equal(closed.body.stopped, 1);
    hold.release();
    const r = await h.waitForStatus(id, TERMINAL);
    assert.ok(["completed", "cancelled"].includes(r.status), `${r.status}/${r.terminalReason}`);
    assert.equal(h.github.comments.length, 1);
    h.github.setPull({ owner: "owner1", repo: "service", number: 1, state: "open" });
    const reopened = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ action: "reopened", ownerId: 1, number: 1, headSha: sha(1) }),
    );
    const again = await h.waitForStatus(reopened.body.reviewId as string, TERMINAL);
    assert.equal(again.status, "completed");
    assert.equal(h.github.comments.length, 1, "the reopened review posted a second comment");
    assert.deepEqual(await ownerActive(h, 1), { limit: 4, active: 0, pending: 0 });
  });
});

Deno.test("attack close (withstood): the API cannot cancel a pr_closed review twice, and counts stay at zero", async () => {
  const held = heldSessions();
  const env = { MAX_CONCURRENT_PER_OWNER: "1" };
  await withHarness("kv-queue", { script: held.script, env }, async (h) => {
    const ids = [];
    for (let n = 1; n <= 3; n++) ids.push((await h.openPull(1, n)).body.reviewId as string);
    for (let n = 1; n <= 3; n++) {
      h.github.setPull({ owner: "owner1", repo: "service", number: n, state: "closed" });
    }
    const results = await Promise.all(
      [1, 2, 3, 1, 2, 3].map((n) => h.sendWebhook("pull_request", closedPayload(1, n))),
    );
    const stopped = results.reduce((s, r) => s + (r.body.stopped as number), 0);
    assert.equal(stopped, 3);
    held.release();
    for (const id of ids) {
      const r = await h.waitForStatus(id, TERMINAL);
      assert.equal(r.terminalReason, "pr_closed");
      const c = await h.api("POST", `/reviews/${id}/cancel`, {}, BACKEND_TOKEN);
      assert.equal(c.status, 409);
    }
    assert.deepEqual(await ownerActive(h, 1), { limit: 1, active: 0, pending: 0 });
  });
});

Deno.test("attack close: a review the pipeline finds closed on GitHub ends pr_closed, as the close webhook's do", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    h.github.setPull({
      owner: "owner1",
      repo: "service",
      number: 3,
      headSha: sha(3),
      state: "closed",
    });
    const closed = await h.sendWebhook("pull_request", closedPayload(1, 3));
    assert.deepEqual(closed.body, { status: "closed", stopped: 0 });
    // A push delivered after the close.
    const late = await h.sendWebhook(
      "pull_request",
      pullRequestPayload({ action: "synchronize", ownerId: 1, number: 3, headSha: sha(3) }),
    );
    const r = await h.waitForStatus(late.body.reviewId as string, TERMINAL);
    assert.equal(h.github.comments.length, 0);
    assert.deepEqual([r.status, r.terminalReason], ["cancelled", "pr_closed"], r.errorMessage);
  });
});
