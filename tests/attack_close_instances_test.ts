/**
 * Attacks on `pull_request.closed` across two service instances on one KV file, and on a running
 * review the close's bounded read does not reach.
 */
import assert from "node:assert/strict";
import { sseResponse } from "./fakes/agent.ts";
import { type Harness, pullRequestPayload, sha, startHarness, waitFor } from "./harness.ts";

const TERMINAL = ["completed", "failed", "cancelled"];

function heldSessions() {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  return {
    script: () => sseResponse([{ event: "done", data: {} }], { holdUntil: gate }),
    release,
  };
}

function closedPayload(ownerId: number, number: number) {
  return pullRequestPayload({
    action: "closed",
    ownerId,
    number,
    headSha: sha(number),
    state: "closed",
  });
}

async function twoInstances(env: Record<string, string>, script: () => Response) {
  const dir = await Deno.makeTempDir({ prefix: "attack-close-" });
  const a = await Deno.openKv(`${dir}/kv.sqlite3`);
  const b = await Deno.openKv(`${dir}/kv.sqlite3`);
  const one = await startHarness({ transport: "kv-table", env, wrapKv: () => a, script });
  const two = await startHarness({
    transport: "kv-table",
    env: { ...env, GITHUB_API_URL: one.github.url, AGENT_URL: one.agent.url },
    wrapKv: () => b,
  });
  return {
    one,
    two,
    async close() {
      await one.close();
      await two.close();
      a.close();
      b.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function usage(h: Harness, ownerId: number) {
  const { limit, active, pending } = (await h.api("GET", `/owners/org/${ownerId}`)).body;
  return { limit, active, pending };
}

Deno.test("attack close (withstood): the same closes sent to two instances at once stop each review once", async () => {
  const held = heldSessions();
  const env = { MAX_CONCURRENT_PER_OWNER: "2", LEASE_CHECK_MS: "200", FAST_PATH: "true" };
  const { one, two, close } = await twoInstances(env, held.script);
  try {
    // Three pull requests of one owner, each with a webhook review and two API reviews: two run
    // (one on each instance, whichever claims them), the rest are queued or pending.
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      one.github.setPull({ owner: "owner1", repo: "service", number: n, headSha: sha(n) });
      const h = n % 2 ? one : two;
      ids.push((await h.openPull(1, n)).body.reviewId as string);
      for (const k of [1, 2]) {
        const res = await (k % 2 ? two : one).api("POST", "/review", {
          reviewId: `api-${n}-${k}`,
          authToken: "bearer",
          owner: { type: "org", id: "1", login: "owner1" },
          sessionInput: { githubRepo: "owner1/service", pullNumber: n },
        });
        assert.equal(res.status, 202);
        ids.push(res.body.reviewId as string);
      }
    }
    await waitFor("two sessions", () => one.agent.open === 2 ? true : undefined);
    // GitHub is left open here: an attempt that starts meanwhile would otherwise end through the
    // pipeline's own closed check (see the terminal reason test in attack_close_webhook_test.ts).
    const results = await Promise.all(
      [1, 2, 3].flatMap((n) => [
        one.sendWebhook("pull_request", closedPayload(1, n)),
        two.sendWebhook("pull_request", closedPayload(1, n)),
      ]),
    );
    assert.ok(results.every((r) => r.status === 200), JSON.stringify(results));
    const stopped = results.reduce((s, r) => s + (r.body.stopped as number), 0);
    assert.equal(stopped, 9, "each review stopped exactly once across both instances");
    for (const id of ids) {
      const r = await one.waitForStatus(id, TERMINAL, 10_000);
      assert.deepEqual([r.status, r.terminalReason], ["cancelled", "pr_closed"], id);
    }
    await waitFor("sessions closed", () => one.agent.open === 0 ? true : undefined);
    assert.deepEqual(await usage(one, 1), { limit: 2, active: 0, pending: 0 });
    assert.ok(one.agent.maxOpen <= 2, `max open ${one.agent.maxOpen}`);
    assert.equal(one.github.comments.length, 0);
    held.release();
  } finally {
    held.release();
    await close();
  }
});

Deno.test("attack close: a running review past the first 200 unfinished ones is not stopped and posts on the closed pull request", async () => {
  const held = heldSessions();
  const h = await startHarness({ script: held.script, env: { MAX_CONCURRENT_PER_OWNER: "1" } });
  try {
    h.github.setPull({ owner: "owner1", repo: "service", number: 9, headSha: sha(9) });
    const body = (reviewId: string) => ({
      reviewId,
      authToken: "bearer",
      owner: { type: "org", id: "1", login: "owner1" },
      sessionInput: { githubRepo: "owner1/service", pullNumber: 9 },
    });
    // Runs first (the owner's one slot) but sorts last among the pull request's reviews.
    assert.equal((await h.api("POST", "/review", body("zz-running"))).status, 202);
    await waitFor("its session", () => h.agent.open === 1 ? true : undefined);
    for (let i = 0; i < 200; i++) {
      const res = await h.api("POST", "/review", body(`aa-${String(i).padStart(4, "0")}`));
      assert.equal(res.status, 202);
    }
    h.github.setPull({ owner: "owner1", repo: "service", number: 9, state: "closed" });
    const closed = await h.sendWebhook("pull_request", closedPayload(1, 9));
    assert.equal(closed.status, 200);
    held.release();
    const r = await h.waitForStatus("zz-running", TERMINAL);
    assert.deepEqual(
      [r.status, r.terminalReason, h.github.comments.length],
      ["cancelled", "pr_closed", 0],
      "the running review kept going after the close and commented on the closed pull request",
    );
  } finally {
    held.release();
    await h.close();
  }
});
