/**
 * What a review costs KV, commit by commit: the writes of its record from creation to the end,
 * so a write folded away (the head before the agent session, the fast path's queue message) that
 * comes back fails here. And the one case where the head is still written before the session: a
 * review that did not know its head, which a newer push must be able to supersede while it runs.
 */
import assert from "node:assert/strict";
import { holdFirstSession, sseResponse } from "./fakes/agent.ts";
import { sha, transportSuite, waitFor, withHarness } from "./harness.ts";
import { DELETED, type Mutation, type Recorder, recordingKv } from "./kv_recorder.ts";
import type { PullComment, ReviewRecord } from "../kv/records.ts";
import type { ReviewAgent } from "../review/agents/agent.ts";
import { cancelReview } from "../kv/cancel.ts";
import { txnContext } from "../review/deps.ts";

/** How a commit wrote review `id`: its status, and what else the commit tells about it. */
function recordWrites(rec: Recorder, id: string): string[] {
  const out: string[] = [];
  const leases = new Set<string>();
  for (const commit of rec.commits) {
    const write = commit.find(([k, v]) => k[0] === "reviews" && k[1] === id && v !== DELETED);
    if (!write) continue;
    const review = write[1] as ReviewRecord;
    const events = commit.some(([k]) => k[0] === "review_events" && k[1] === id);
    if (review.status === "running" && !leases.has(review.lease!.token)) {
      leases.add(review.lease!.token);
      out.push("start");
    } else if (review.status === "running" && review.resultStored && !out.includes("result")) {
      out.push(events ? "result+progress" : "result");
    } else if (events) {
      out.push("progress");
    } else {
      out.push(review.status === "running" ? "running" : review.status);
    }
  }
  return out;
}

const isQueueMessage = ([k]: Mutation) => k[0] === "queue_due";

transportSuite(
  "a short webhook review's record is written at create, start, result and finish only",
  (transport) => {
    const rec: Recorder = { commits: [] };
    return withHarness(transport, {
      wrapKv: (kv) => recordingKv(kv, rec, { dead: false }),
      script: () =>
        sseResponse([{ event: "status", data: { message: "reading" } }, {
          event: "done",
          data: {},
        }]),
      env: { FAST_PATH: "true", LEASE_MS: "30000" },
    }, async (h) => {
      h.github.setPull({
        owner: "owner7",
        repo: "service",
        number: 3,
        headSha: sha(3),
        title: "Title on GitHub",
        baseSha: "c".repeat(40),
      });
      const id = (await h.openPull(7, 3, sha(3))).body.reviewId as string;
      const done = await h.waitForStatus(id, ["completed"]);
      // No write between the start and the result: the head GitHub confirmed was stored already,
      // and a session shorter than PROGRESS_WRITE_MS leaves its progress to the result's commit.
      assert.deepEqual(recordWrites(rec, id), ["queued", "start", "result+progress", "completed"]);
      const log = (await h.api("GET", `/reviews/${id}/events`)).body.events as Array<
        { type: string }
      >;
      assert.deepEqual(log.map((e) => e.type), ["attempt", "status", "done"]);
      assert.equal(done.progress?.message, "reading");
      // The publish claim is taken by the result's commit: the pointer is written there and by
      // the finish only.
      const pointer = rec.commits.filter((c) => c.some(([k]) => k[0] === "pr_comments"));
      assert.equal(pointer.length, 2);
      const claim = pointer[0].find(([k]) => k[0] === "pr_comments")![1] as PullComment;
      assert.equal(claim.claim?.reviewId, id);
      assert.ok(pointer[0].some(([k, v]) => k[1] === id && (v as ReviewRecord).resultStored));
      // Base and title as GitHub reports them reach the record with the result.
      assert.deepEqual([done.title, done.baseSha], ["Title on GitHub", "c".repeat(40)]);
      // The fast path's start took the message with it: no claim moved it, nothing deleted it
      // later (kv-table); kv-queue writes no table message at all.
      const messageCommits = rec.commits.filter((c) => c.some(isQueueMessage));
      assert.equal(messageCommits.length, transport === "kv-table" ? 2 : 0);
    });
  },
);

transportSuite(
  "an API review stores its head before its agent session, so a newer push supersedes it while it runs",
  (transport) => {
    const { script, release } = holdFirstSession();
    const rec: Recorder = { commits: [] };
    return withHarness(transport, {
      wrapKv: (kv) => recordingKv(kv, rec, { dead: false }),
      script,
      env: { FAST_PATH: "true", LEASE_MS: "30000" },
    }, async (h) => {
      h.github.setPull({ owner: "owner8", repo: "service", number: 4, headSha: sha(40) });
      const api = await h.api("POST", "/review", {
        reviewId: "api-head",
        authToken: "bearer",
        owner: { type: "org", id: "8", login: "owner8" },
        sessionInput: { githubRepo: "owner8/service", pullNumber: 4 },
      });
      assert.equal(api.status, 202);
      await waitFor("the API review's session", () => h.agent.open === 1 ? true : undefined);
      const running = await h.review("api-head");
      assert.equal(running.headSha, sha(40), "stored before the session opened");
      assert.deepEqual(recordWrites(rec, "api-head").filter((w) => w !== "progress"), [
        "queued",
        "start",
        "running",
      ]);
      // A push: the new head's review confirms it on GitHub and supersedes the stale one.
      const pushed = await h.openPull(8, 4, sha(41));
      const stale = await h.waitForStatus("api-head", ["cancelled", "completed"]);
      assert.deepEqual([stale.status, stale.terminalReason], ["cancelled", "superseded"]);
      const fresh = await h.waitForStatus(pushed.body.reviewId as string, ["completed"]);
      assert.equal(fresh.headSha, sha(41));
      assert.equal(h.github.comments.length, 1);
      assert.match(h.github.comments[0].body, new RegExp(sha(41).slice(0, 7)));
      release();
    }).finally(release);
  },
);

Deno.test("a session whose result cannot be stored still leaves its usage on the record", async () => {
  // Each session reports its usage at its end, as OpenAI-compatible servers do.
  const agent: ReviewAgent = {
    kind: "openai",
    review(_request, { emit }) {
      emit({ type: "usage", model: "gpt-test", tokensIn: 100, tokensOut: 10, cost: 0.5 });
      emit({ type: "done" });
      return Promise.resolve();
    },
  };
  let failed = false;
  const rec: Recorder = {
    commits: [],
    // The first result commit fails (a KV error): the attempt is retried.
    before(mutations) {
      const result = mutations.some(([k, v]) =>
        k[0] === "reviews" && (v as ReviewRecord).resultStored === true
      );
      if (result && !failed) {
        failed = true;
        throw new Error("KV unavailable");
      }
    },
  };
  await withHarness("kv-queue", {
    agent,
    wrapKv: (kv) => recordingKv(kv, rec, { dead: false }),
    env: { FAST_PATH: "true" },
  }, async (h) => {
    const id = (await h.openPull(9, 1)).body.reviewId as string;
    const done = await h.waitForStatus(id, ["completed"], 10_000);
    assert.ok(failed);
    assert.equal(done.attempts, 2);
    // Both sessions' usage: the first one's was written on its own when its result was not.
    assert.deepEqual(done.usage, { model: "gpt-test", tokensIn: 200, tokensOut: 20, cost: 1 });
  });
});

Deno.test("a stop between the result's commit (which took the publish claim) and posting: nothing posted, claim given back", async () => {
  const rec: Recorder = { commits: [] };
  let stopped = false;
  await withHarness("kv-table", {
    wrapKv: (kv) => recordingKv(kv, rec, { dead: false }),
    script: () => sseResponse([{ event: "done", data: {} }]),
    env: { FAST_PATH: "true" },
  }, async (h) => {
    // Right after the result's commit, before the attempt goes on to post: a cancel.
    rec.after = async (mutations) => {
      const result = mutations.find(([k, v]) =>
        k[0] === "reviews" && (v as ReviewRecord).resultStored === true
      );
      if (!result || stopped) return;
      stopped = true;
      const id = String(result[0][1]);
      const cancelled = await cancelReview(txnContext(h.service.deps), id, "changed my mind");
      assert.equal(cancelled.kind, "cancelled");
      if (cancelled.kind === "cancelled") h.service.deps.apply(cancelled.transition.changes);
    };
    const id = (await h.openPull(10, 1)).body.reviewId as string;
    const done = await h.waitForStatus(id, ["cancelled", "completed"]);
    assert.ok(stopped);
    assert.deepEqual([done.status, done.terminalReason], ["cancelled", "cancelled"]);
    assert.equal(h.github.comments.length, 0, "nothing posted");
    const pointer = await h.kv.get<PullComment>(["pr_comments", "owner10/service", 1]);
    assert.equal(pointer.value?.claim, undefined, "the claim was given back");
  });
});
