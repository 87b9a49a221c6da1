/**
 * Dispatch latency: from the commit that completes a review to the agent session of the owner's
 * next review, per transport, with and without the same-process fast path.
 *
 *   deno run -A bench/dispatch_latency.ts [reviews=100]
 */
import { sseResponse } from "../tests/fakes/agent.ts";
import { pullRequestPayload, sha, startHarness, TRANSPORTS } from "../tests/harness.ts";
import { describe } from "./stats.ts";

const N = Number(Deno.args[0] ?? 100);

for (const transport of TRANSPORTS) {
  for (const fastPath of [false, true]) {
    const h = await startHarness({
      transport,
      env: { MAX_CONCURRENT_PER_OWNER: "1", FAST_PATH: String(fastPath), QUEUE_POLL_MS: "1000" },
      script: () => sseResponse([{ event: "done", data: {} }]),
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i <= N; i++) {
        h.github.setPull({ owner: "owner1", repo: "service", number: i + 1, headSha: sha(i + 1) });
        const res = await h.sendWebhook(
          "pull_request",
          pullRequestPayload({ ownerId: 1, number: i + 1, headSha: sha(i + 1) }),
        );
        ids.push(res.body.reviewId as string);
      }
      await h.waitForStatus(ids[N], ["completed"], 600_000);
      const reviews = await Promise.all(ids.map((id) => h.review(id)));
      const started = new Map(h.agent.sessions.map((s) => [s.body.reviewId, s.receivedAt]));
      const latencies = reviews.slice(1).map((r, i) => started.get(r.id)! - reviews[i].finishedAt!);
      console.log(`${transport}, fast path ${fastPath ? "on " : "off"}: ${describe(latencies)}`);
    } finally {
      await h.close();
    }
  }
}
