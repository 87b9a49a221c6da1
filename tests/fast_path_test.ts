/**
 * The same-process fast path on the `kv-table` transport: the start commit removes the
 * dispatch's own queue message, so a started review costs the table no claim and no delete. And
 * what a crash on either side of that commit leaves: before it, the message (another instance's
 * listener starts the review); after it, a running review under a lease (the sweeper recovers
 * it once the lease expires).
 */
import assert from "node:assert/strict";
import { sseResponse } from "./fakes/agent.ts";
import { type Harness, sha, startHarness, waitFor } from "./harness.ts";
import { DELETED, type Mutation, type Recorder, recordingKv } from "./kv_recorder.ts";

const isMessage = ([key]: Mutation) => key[0] === "queue_due";
/** A write of a running record (the first one of an attempt is its start commit). */
const startsReview = ([key, value]: Mutation) =>
  key[0] === "reviews" && (value as { status?: string }).status === "running";

function heldSessions() {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  return {
    script: () => sseResponse([{ event: "done", data: {} }], { holdUntil: gate }),
    release,
  };
}

async function queueTable(kv: Deno.Kv) {
  return await Array.fromAsync(kv.list({ prefix: ["queue_due"] }));
}

Deno.test("[kv-table] a fast-path start removes its message in the start commit: no claim, no delete", async () => {
  const held = heldSessions();
  const rec: Recorder = { commits: [] };
  const h = await startHarness({
    transport: "kv-table",
    wrapKv: (kv) => recordingKv(kv, rec, { dead: false }),
    script: held.script,
    env: { FAST_PATH: "true", MAX_CONCURRENT_PER_OWNER: "2" },
  });
  try {
    const ids: string[] = [];
    for (const owner of [1, 2]) {
      for (const n of [1, 2, 3]) {
        ids.push((await h.openPull(owner, owner * 10 + n)).body.reviewId as string);
      }
    }
    await waitFor("four sessions", () => h.agent.open === 4 ? true : undefined);
    // Running reviews need no message (their lease recovers them); pending ones have none yet.
    assert.deepEqual(await queueTable(h.kv), [], "no message is left for a running review");
    held.release();
    for (const id of ids) {
      assert.equal((await h.waitForStatus(id, ["completed"])).status, "completed");
    }
    assert.equal(h.agent.sessions.length, 6);
    // A start commit writes a running record under a lease no earlier commit wrote.
    const leases = new Set<string>();
    const starts = rec.commits.filter((c) =>
      c.some((m) => {
        const token = (m[1] as { lease?: { token: string } }).lease?.token;
        if (!startsReview(m) || !token || leases.has(token)) return false;
        leases.add(token);
        return true;
      })
    );
    assert.equal(starts.length, 6);
    for (const start of starts) {
      const dropped = start.filter(isMessage);
      assert.equal(dropped.length, 1, "each start commit deletes one message");
      assert.equal(dropped[0][1], DELETED);
      const sent = rec.commits.find((c) =>
        c.some(([k, v]) => isMessage([k, v]) && v !== DELETED && k[2] === dropped[0][0][2])
      );
      assert.ok(sent, "the message deleted is one a dispatch commit sent");
    }
    // A listener that claimed a message would move it (a delete and a set in one commit) and
    // delete it after its handler: neither happened.
    const others = rec.commits.filter((c) => !starts.includes(c) && c.some(isMessage));
    for (const c of others) {
      const messages = c.filter(isMessage);
      assert.ok(messages.every(([, v]) => v !== DELETED), `only dispatches: ${Deno.inspect(c)}`);
    }
    assert.deepEqual(await queueTable(h.kv), []);
  } finally {
    held.release();
    await h.close();
  }
});

/**
 * Two instances on one KV file; `one` dies at its start commit of the first review, just
 * `before` it (the commit never applies) or just `after` it (the commit applied, its answer
 * lost). `two` starts only once `one` is dead, so what it finds is what the crash left.
 */
async function crashAtStart(
  when: "before" | "after",
  twoEnv: Record<string, string>,
  fn: (ctx: { one: Harness; two: Harness; kv: Deno.Kv; id: string }) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "fast-path-crash-" });
  const a = await Deno.openKv(`${dir}/kv.sqlite3`);
  const b = await Deno.openKv(`${dir}/kv.sqlite3`);
  const life = { dead: false };
  let died!: () => void;
  const death = new Promise<void>((r) => died = r);
  const rec: Recorder = { commits: [] };
  rec[when] = (mutations) => {
    if (!mutations.some(startsReview)) return;
    life.dead = true;
    died();
    throw new Error(`this process died ${when} its start commit`);
  };
  const one = await startHarness({
    transport: "kv-table",
    wrapKv: () => recordingKv(a, rec, life),
    script: () => sseResponse([{ event: "done", data: {} }]),
    // Its listener's pause after a KV error (a dead process's every call) is QUEUE_POLL_MS.
    env: { FAST_PATH: "true", LEASE_MS: "600", QUEUE_POLL_MS: "200" },
  });
  let two: Harness | undefined;
  try {
    one.github.setPull({ owner: "owner1", repo: "service", number: 1, headSha: sha(1) });
    const res = await one.openPull(1, 1);
    assert.equal(res.status, 202);
    await death;
    two = await startHarness({
      transport: "kv-table",
      wrapKv: () => b,
      env: { GITHUB_API_URL: one.github.url, AGENT_URL: one.agent.url, ...twoEnv },
    });
    await fn({ one, two, kv: b, id: res.body.reviewId as string });
  } finally {
    await two?.close();
    await one.close();
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("[kv-table] a crash just before the fast-path start commit leaves the message: another instance starts the review", async () => {
  // No sweeps on `two`: only the message can bring the review to it.
  await crashAtStart("before", { QUEUE_POLL_MS: "50" }, async ({ one, two, kv, id }) => {
    const [queued] = await queueTable(kv);
    assert.equal((queued?.value as { reviewId?: string })?.reviewId, id, "the message is there");
    const done = await two.waitForStatus(id, ["completed"], 15_000);
    assert.equal(done.attempts, 1);
    assert.equal(one.agent.sessions.length, 1);
    assert.deepEqual(await queueTable(kv), []);
    assert.ok(!two.logs.some((l) => l.message === "review repair"), "not a sweeper recovery");
  });
});

Deno.test("[kv-table] a crash just after the fast-path start commit: its message is gone, and the lease brings the review back", async () => {
  const env = { SWEEP_INTERVAL_MS: "200", CLOCK_SKEW_MS: "0", QUEUE_POLL_MS: "50" };
  await crashAtStart("after", env, async ({ one, two, kv, id }) => {
    const running =
      (await kv.get<{ status: string; lease?: { instance: string } }>(["reviews", id]))
        .value!;
    assert.equal(running.status, "running", "the start commit applied");
    assert.deepEqual(await queueTable(kv), [], "and took the review's message with it");
    const done = await two.waitForStatus(id, ["completed"], 10_000);
    assert.equal(done.attempts, 2, "the attempt of the dead process counts");
    assert.equal(one.agent.sessions.length, 1, "the dead process never opened its session");
    assert.ok(
      two.logs.some((l) => l.message === "review repair" && l.context?.reviewId === id),
      "recovered by the sweeper once the lease expired",
    );
    assert.deepEqual(await queueTable(kv), []);
  });
});
