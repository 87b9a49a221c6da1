/**
 * Attacks on "one of each per head, whatever happens": the summary comment, the inline review and
 * the check run, against strangers' markers, redeliveries, a second instance on the same KV,
 * RIGHT-side placement, and check-run endpoints that fail or hang.
 */
import assert from "node:assert/strict";
import { startService } from "../main.ts";
import { REVIEW_COMMENT_MARKER } from "../review/comment.ts";
import { inlineReviewMarker } from "../review/inline_review.ts";
import type { Logger } from "../review/deps.ts";
import { reviewScript } from "./fakes/agent.ts";
import type { FakeReview } from "./fakes/github.ts";
import {
  commentPayload,
  DIFF,
  ON_DIFF,
  openPayload,
  openPull,
  OWNER,
  settled,
  signedRequest,
  withApp,
} from "./github_app_helpers.ts";
import { type Harness, sha, waitFor } from "./harness.ts";

/** A review someone else wrote, put straight into the fake's records. */
function foreignReview(
  h: Harness,
  options: { number: number; body: string; commitId: string; author: string; type: "User" | "Bot" },
): FakeReview {
  const id = 900_000 + h.github.reviews.length;
  const review: FakeReview = {
    id,
    nodeId: `PRR_kwDOforeign${id}`,
    owner: OWNER,
    repo: "service",
    pullNumber: options.number,
    commitId: options.commitId,
    body: options.body,
    event: "COMMENT",
    state: "COMMENTED",
    comments: [],
    author: options.author,
    authorType: options.type,
    submittedAt: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
  h.github.reviews.push(review);
  return review;
}

const BOT = "ai-review[bot]";

Deno.test("attack publish (fixed): another bot's comment carrying our marker is adopted, so our summary comment is never posted", async () => {
  await withApp({}, async (h) => {
    // Another App (say a staging deployment of this same service, or any bot a workflow drives)
    // wrote a comment that starts with our hidden marker before we reviewed.
    h.github.setPull({ owner: OWNER, repo: "service", number: 1, headSha: sha(1), diff: DIFF });
    const foreign = h.github.addComment({
      owner: OWNER,
      repo: "service",
      issueNumber: 1,
      body: `${REVIEW_COMMENT_MARKER}\nI am another bot`,
      author: "other-app[bot]",
      authorType: "Bot",
    });
    const id = await openPull(h, 1);
    const review = await settled(h, id);
    assert.equal(foreign.body, `${REVIEW_COMMENT_MARKER}\nI am another bot`, "left alone");
    const ours = h.github.comments.filter((c) => c.author === BOT);
    assert.equal(
      ours.length,
      1,
      `our bot posted ${ours.length} summary comments; the review's comment pointer is ` +
        `${review.commentId} (the other bot's comment is ${foreign.id})`,
    );
    assert.notEqual(review.commentId, foreign.id, "the pointer names someone else's comment");
  });
});

Deno.test("attack publish (fixed): another bot's inline review for the head is adopted (ours never posted) and its older ones are minimized", async () => {
  await withApp({}, async (h) => {
    h.github.setPull({ owner: OWNER, repo: "service", number: 2, headSha: sha(2), diff: DIFF });
    const forHead = foreignReview(h, {
      number: 2,
      body: `${inlineReviewMarker(sha(2), "not-yours")}\nanother bot`,
      commitId: sha(2),
      author: "other-app[bot]",
      type: "Bot",
    });
    const older = foreignReview(h, {
      number: 2,
      body: `${inlineReviewMarker(sha(99), "not-yours")}\nanother bot, older head`,
      commitId: sha(99),
      author: "other-app[bot]",
      type: "Bot",
    });
    const id = await openPull(h, 2);
    const review = await settled(h, id);
    assert.equal(older.minimized, undefined, "another bot's review was minimized by us");
    const ours = h.github.reviews.filter((r) => r.author === BOT);
    assert.equal(ours.length, 1, `our inline review: ${ours.length} (adopted ${forHead.id})`);
    assert.notEqual(review.inlineReviewId, forHead.id);
  });
});

Deno.test("attack publish (withstood): a user's comment and reviews carrying our markers are never adopted, edited or minimized", async () => {
  await withApp({}, async (h) => {
    h.github.setPull({ owner: OWNER, repo: "service", number: 3, headSha: sha(3), diff: DIFF });
    const comment = h.github.addComment({
      owner: OWNER,
      repo: "service",
      issueNumber: 3,
      body: `${REVIEW_COMMENT_MARKER}\nmallory was here`,
      author: "mallory",
    });
    const forHead = foreignReview(h, {
      number: 3,
      body: inlineReviewMarker(sha(3), "x"),
      commitId: sha(3),
      author: "mallory",
      type: "User",
    });
    const older = foreignReview(h, {
      number: 3,
      body: inlineReviewMarker(sha(98), "x"),
      commitId: sha(98),
      author: "mallory",
      type: "User",
    });
    // A bot-looking login that is a User account.
    const fakeBot = h.github.addComment({
      owner: OWNER,
      repo: "service",
      issueNumber: 3,
      body: `${REVIEW_COMMENT_MARKER}\nnot really a bot`,
      author: "ai-review-bot",
      authorType: "User",
    });
    const id = await openPull(h, 3);
    const review = await settled(h, id);
    assert.equal(comment.updatedCount, 0);
    assert.equal(fakeBot.updatedCount, 0);
    assert.equal(forHead.minimized, undefined);
    assert.equal(older.minimized, undefined);
    assert.equal(h.github.comments.filter((c) => c.author === BOT).length, 1);
    assert.equal(h.github.reviews.filter((r) => r.author === BOT).length, 1);
    assert.notEqual(review.commentId, comment.id);
    assert.notEqual(review.inlineReviewId, forHead.id);
  });
});

Deno.test("attack publish (withstood): a redelivered webhook and a second delivery of the same head post nothing twice", async () => {
  await withApp({}, async (h) => {
    h.github.setPull({ owner: OWNER, repo: "service", number: 4, headSha: sha(4), diff: DIFF });
    const payload = openPayload(4, sha(4));
    const first = await h.sendWebhook("pull_request", payload, { deliveryId: "d-4" });
    const again = await h.sendWebhook("pull_request", payload, { deliveryId: "d-4" });
    const other = await h.sendWebhook("pull_request", payload, { deliveryId: "d-4b" });
    assert.equal(again.body.reviewId, first.body.reviewId);
    assert.equal(other.body.reviewId, first.body.reviewId);
    await settled(h, first.body.reviewId as string);
    // And once more after it completed.
    const late = await h.sendWebhook("pull_request", payload, { deliveryId: "d-4" });
    assert.equal(late.body.reviewId, first.body.reviewId);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.github.comments.length, 1);
    assert.equal(h.github.reviews.length, 1);
    assert.equal(h.github.checkRuns.length, 1);
    assert.equal(h.agent.sessions.length, 1);
  });
});

Deno.test("attack publish (withstood): a retried posting step whose creates all happened (502 after effect) adopts them, with list calls failing too", async () => {
  await withApp({}, async (h) => {
    h.github.failNext("comment", 502, 1, { afterEffect: true });
    h.github.failNext("review", 504, 1, { afterEffect: true });
    h.github.failNext("checks.create", 502, 2, { afterEffect: true });
    const id = await openPull(h, 5);
    await settled(h, id);
    assert.equal(h.github.comments.length, 1);
    assert.equal(h.github.reviews.length, 1);
    assert.equal(h.github.checkRuns.length, 1);
    assert.equal(h.github.checkRuns[0].conclusion, "neutral");
  });
});

Deno.test("attack publish (withstood): two instances on one KV, each sent a /review of the same head at once, post one comment and one inline review", async () => {
  await withApp({ env: { QUEUE_TRANSPORT: "kv-table" } }, async (h) => {
    const logs: Array<unknown> = [];
    const log: Logger = (level, message, context) => logs.push({ level, message, context });
    const second = await startService({ config: h.config, kv: h.kv, log });
    try {
      const first = await openPull(h, 8);
      await settled(h, first);
      const a = commentPayload(h, "/review", "MEMBER", 8);
      const b = commentPayload(h, "/review", "OWNER", 8);
      const [ra, rb] = await Promise.all([
        h.sendWebhook("issue_comment", a),
        signedRequest("issue_comment", b).then((req) => second.app.fetch(req)).then((r) =>
          r.json()
        ),
      ]);
      assert.equal(ra.status, 202);
      await h.waitForStatus(ra.body.reviewId as string, ["completed"]);
      await h.waitForStatus(rb.reviewId as string, ["completed"]);
      await waitFor(
        "three completed check runs",
        () => h.github.checkRuns.filter((r) => r.status === "completed").length === 3 || undefined,
      );
      assert.equal(h.github.comments.filter((c) => c.author === BOT).length, 1);
      assert.equal(h.github.reviews.length, 1, "one inline review for the head");
      assert.equal(h.github.checkRuns.length, 3, "one check run per review");
    } finally {
      await second.stop(2_000);
    }
  });
});

Deno.test("attack publish (withstood): inline comments only on RIGHT-side lines of the reviewed head; deleted lines, gaps and cross-hunk ranges are not commented", async () => {
  const findings = [
    ON_DIFF, // line 2: added, RIGHT
    { ...ON_DIFF, line_number: 11, title: "right in hunk 2" }, // added in hunk 2
    { ...ON_DIFF, line_number: 6, title: "between hunks" }, // not in the diff
    { ...ON_DIFF, line_number: 10, line_end: 12, title: "range in hunk 2" },
    { ...ON_DIFF, line_number: 3, line_end: 11, title: "range across hunks" },
    { ...ON_DIFF, line_number: 0, title: "line zero" },
    { ...ON_DIFF, line_number: -1, title: "negative" },
    { ...ON_DIFF, line_number: 2, file_path: "package-lock.json", title: "ignored file" },
    { ...ON_DIFF, line_number: 2, file_path: "src/../src/app.ts", title: "dotted path" },
    { ...ON_DIFF, line_number: 2, file_path: "SRC/APP.TS", title: "case" },
  ];
  await withApp({ script: reviewScript({ findings }) }, async (h) => {
    const id = await openPull(h, 9);
    await settled(h, id);
    assert.equal(h.github.reviews.length, 1);
    const review = h.github.reviews[0];
    assert.equal(review.commitId, sha(9));
    const placed = review.comments.map((c) => [c.path, c.startLine ?? null, c.line, c.side]);
    assert.deepEqual(
      placed.sort(),
      [
        ["src/app.ts", 10, 12, "RIGHT"],
        ["src/app.ts", null, 11, "RIGHT"],
        ["src/app.ts", null, 2, "RIGHT"],
        ["src/app.ts", null, 3, "RIGHT"],
      ].sort(),
    );
    assert.ok(review.comments.every((c) => c.startSide === undefined || c.startSide === "RIGHT"));
  });
});

Deno.test("attack publish (withstood): check runs answering 500 every time never fail or delay the review", async () => {
  await withApp({}, async (h) => {
    h.github.failNext("checks.create", 500, 1_000);
    h.github.failNext("checks.list", 500, 1_000);
    h.github.failNext("status", 500, 1_000);
    const started = Date.now();
    const id = await openPull(h, 10);
    const review = await h.waitForStatus(id, ["completed"], 8_000);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    assert.equal(review.status, "completed");
    assert.equal(h.github.comments.length, 1);
    assert.equal(h.github.checkRuns.length, 0);
  });
});

Deno.test("attack publish (fixed): check-run creates that hang hold the installation's Octokit request slots, so every review of the installation stalls until they time out", async () => {
  // Ten reviews of one installation running at once (MAX_CONCURRENT_PER_OWNER 10); GitHub hangs
  // on `POST /check-runs` only. Each review's check run waits in Octokit's per-installation
  // request slots (then 10 at a time), so the reviews' own reads and the summary
  // comments queue behind the hung check runs for GitHub's full request timeout (30 s).
  await withApp({ env: { MAX_CONCURRENT_PER_OWNER: "10" } }, async (h) => {
    const holds = Array.from({ length: 10 }, () => h.github.holdNext("checks.create"));
    try {
      const ids: string[] = [];
      for (let n = 20; n < 30; n++) ids.push(await openPull(h, n));
      const started = Date.now();
      const done = await waitFor("all ten reviews to complete", async () => {
        const states = await Promise.all(ids.map((id) => h.review(id).then((r) => r.status)));
        return states.every((s) => s === "completed") ? true : undefined;
      }, 6_000).catch(() => false);
      const completed = (await Promise.all(ids.map((id) => h.review(id))))
        .filter((r) => r.status === "completed").length;
      assert.ok(
        done,
        `after ${Date.now() - started} ms only ${completed}/10 reviews completed and ` +
          `${h.github.comments.length} comments were posted: hung check runs block them`,
      );
    } finally {
      for (const hold of holds) hold.release();
    }
  });
});
