/**
 * `pull_request.closed` stops the pull request's unfinished reviews: a waiting one at once, a
 * running one after its attempt has closed the agent session; their slots go to the next review.
 */
import assert from "node:assert/strict";
import { holdFirstSession } from "./fakes/agent.ts";
import { pullRequestPayload, sha, transportSuite, waitFor, withHarness } from "./harness.ts";

transportSuite(
  "closing a pull request cancels its pending and running reviews",
  async (transport) => {
    const { script } = holdFirstSession();
    await withHarness(transport, { script, env: { MAX_CONCURRENT_PER_OWNER: "1" } }, async (h) => {
      const running = (await h.openPull(1, 1)).body.reviewId as string;
      await waitFor("the first session", () => h.agent.open === 1 ? true : undefined);
      const waiting = (await h.openPull(1, 2)).body.reviewId as string;
      const third = (await h.openPull(1, 3)).body.reviewId as string;
      assert.equal((await h.review(waiting)).status, "pending");

      const close = (pr: number) =>
        h.sendWebhook(
          "pull_request",
          pullRequestPayload({
            action: "closed",
            ownerId: 1,
            number: pr,
            headSha: sha(pr),
            state: "closed",
          }),
        );
      const closedWaiting = await close(2);
      assert.deepEqual([closedWaiting.status, closedWaiting.body], [200, {
        status: "closed",
        stopped: 1,
      }]);
      const a = await h.review(waiting);
      assert.deepEqual([a.status, a.terminalReason], ["cancelled", "pr_closed"]);

      const closedRunning = await close(1);
      assert.equal(closedRunning.body.stopped, 1);
      const b = await h.waitForStatus(running, ["cancelled"]);
      assert.deepEqual([b.terminalReason, b.errorMessage], [
        "pr_closed",
        "the pull request was closed",
      ]);
      await waitFor("the agent session closed", () => h.agent.open === 0 ? true : undefined);
      // The freed slot goes to the owner's next review, which completes.
      await h.waitForStatus(third, ["completed"]);
      // A redelivered close finds nothing left to stop.
      assert.deepEqual((await close(1)).body, { status: "closed", stopped: 0 });
      assert.equal(h.github.comments.length, 1, "only the third review posted");
    });
  },
);

Deno.test("a closed payload without a repository or number is a 400 that writes nothing", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    const res = await h.sendWebhook("pull_request", { action: "closed", number: "seven" });
    assert.equal(res.status, 400);
    assert.deepEqual(await Array.fromAsync(h.kv.list({ prefix: [] })), []);
  });
});
