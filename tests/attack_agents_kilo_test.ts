/**
 * Attacks on the `kilo` kind through the real service: remote sessions left running across
 * retries and cancels, and the agent callback route (forged, truncated, cross-review, stale,
 * concurrent, early, malformed and oversized callbacks).
 */
import assert from "node:assert/strict";
import type { ReviewRecord } from "../kv/records.ts";
import {
  type FakeKilo,
  type KiloFrame,
  kiloReviewFrames,
  kiloStream,
  startFakeKilo,
} from "./fakes/kilo.ts";
import { type Harness, startHarness, waitFor } from "./harness.ts";

const KILO_ENV = {
  AGENT_KIND: "kilo",
  AGENT_CALLBACK_WAIT_MS: "100",
  FAST_PATH: "true",
  LEASE_CHECK_MS: "50",
};

async function withKilo(
  kilo: FakeKilo,
  env: Record<string, string>,
  fn: (h: Harness) => Promise<void>,
) {
  const h = await startHarness({ env: { ...KILO_ENV, AGENT_URL: kilo.url, ...env } });
  try {
    await fn(h);
  } finally {
    await h.close();
    await kilo.close();
  }
}

const tokenOf = (kilo: FakeKilo, index: number) =>
  (kilo.sessions[index].input.callbackHeaders as Record<string, string>)["x-callback-token"];

async function postCallback(
  h: Harness,
  id: string,
  body: string,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${h.url}/callbacks/reviews/${encodeURIComponent(id)}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    json = { text };
  }
  return { status: res.status, body: json };
}

const rawRecord = async (h: Harness, id: string) =>
  (await h.kv.get<ReviewRecord>(["reviews", id])).value!;

Deno.test("attack kilo: a retry after a cut stream interrupts the first remote session before opening another", async () => {
  // The remote session outlives its stream (as the real cloud agent does): unless it is
  // interrupted it goes on and, 1.5 s later, posts its review to the pull request.
  const posted: string[] = [];
  let remoteOpen = 0;
  let maxRemoteOpen = 0;
  const kilo = await startFakeKilo((session, ctl) => {
    remoteOpen++;
    maxRemoteOpen = Math.max(maxRemoteOpen, remoteOpen);
    const cut = session.index === 0;
    const frames = cut
      ? kiloReviewFrames(ctl.sessionId).slice(0, 3)
      : kiloReviewFrames(ctl.sessionId);
    const remote = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        posted.push(ctl.sessionId);
        ctl.callback({ status: "completed" }).finally(resolve);
      }, cut ? 1_500 : 50);
      ctl.session.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
    remote.then(() => remoteOpen--);
    return kiloStream(frames, ctl);
  });
  await withKilo(kilo, { MAX_CONCURRENT_TOTAL: "1" }, async (h) => {
    const { body } = await h.openPull(1, 1);
    const id = body.reviewId as string;
    await h.waitForStatus(id, ["completed", "failed"], 10_000);
    await new Promise((r) => setTimeout(r, 1_800));
    assert.equal(kilo.sessions.length, 2, "the cut session was retried");
    assert.ok(
      kilo.interrupts.some((i) => (i.body as { sessionId?: string }).sessionId === "agent_1"),
      "the first remote session must be interrupted before the retry opens a second one",
    );
    assert.deepEqual(posted, ["agent_2"], "only one remote session posts to the pull request");
    assert.ok(maxRemoteOpen <= 1, `MAX_CONCURRENT_TOTAL 1, but ${maxRemoteOpen} sessions ran`);
  });
});

Deno.test("attack kilo: a cancel before the stream names its session still interrupts the remote session", async () => {
  const kilo = await startFakeKilo((_session, ctl) => {
    // The session exists remotely at once; its first event (with its id) comes after 400 ms, and
    // it is still working (no `complete`: a completed session needs no interrupt).
    const frames: KiloFrame[] = kiloReviewFrames(ctl.sessionId).slice(0, -1);
    frames[0] = { ...frames[0], delayMs: 400 };
    return kiloStream(frames, ctl, { holdOpen: true });
  });
  await withKilo(kilo, {}, async (h) => {
    const { body } = await h.openPull(1, 1);
    const id = body.reviewId as string;
    await waitFor("the remote session", () => kilo.sessions.length === 1 || undefined);
    await new Promise((r) => setTimeout(r, 100));
    const cancelled = await h.api("POST", `/reviews/${id}/cancel`, { reason: "not needed" });
    assert.equal(cancelled.status, 200);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.deepEqual(
      kilo.interrupts.map((i) => i.body),
      [{ sessionId: "agent_1" }],
      "the running remote session was not interrupted",
    );
  });
});

Deno.test("attack kilo (withstood): cancel mid-stream interrupts the named remote session once", async () => {
  const kilo = await startFakeKilo((_session, ctl) =>
    kiloStream(kiloReviewFrames(ctl.sessionId).slice(0, 3), ctl, { holdOpen: true })
  );
  await withKilo(kilo, {}, async (h) => {
    const { body } = await h.openPull(1, 1);
    const id = body.reviewId as string;
    await waitFor("session id", async () => (await h.review(id)).sessionId ? true : undefined);
    const cancelled = await h.api("POST", `/reviews/${id}/cancel`, {});
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, "cancelled");
    assert.deepEqual(kilo.interrupts.map((i) => i.body), [{ sessionId: "agent_1" }]);
    const owner = (await h.api("GET", "/owners/org/1")).body;
    assert.equal(owner.active, 0);
  });
});

Deno.test("attack kilo (withstood): forged, truncated, cross-review, malformed and oversized callbacks write nothing", async () => {
  const kilo = await startFakeKilo((_session, ctl) =>
    kiloStream(kiloReviewFrames(ctl.sessionId).slice(0, 3), ctl, { holdOpen: true })
  );
  await withKilo(kilo, {}, async (h) => {
    const a = (await h.openPull(1, 1)).body.reviewId as string;
    const b = (await h.openPull(2, 2)).body.reviewId as string;
    await waitFor("two sessions", () => kilo.sessions.length === 2 || undefined);
    await waitFor("both running with a session id", async () => {
      const [ra, rb] = [await rawRecord(h, a), await rawRecord(h, b)];
      return ra.sessionId && rb.sessionId ? true : undefined;
    });
    const byReview = new Map(
      kilo.sessions.map((
        s,
        i,
      ) => [decodeURIComponent(String(s.input.callbackUrl).split("/").at(-1)!), tokenOf(kilo, i)]),
    );
    const tokenA = byReview.get(a)!;
    const tokenB = byReview.get(b)!;
    // Progress writes are over once both records stay unchanged for 400 ms (a fixed pause was too
    // short on a loaded machine); the records must not change from here on.
    let before = [await rawRecord(h, a), await rawRecord(h, b)];
    await waitFor("progress writes over", async () => {
      await new Promise((r) => setTimeout(r, 400));
      const now = [await rawRecord(h, a), await rawRecord(h, b)];
      const settled = now.every((r, i) => r.rev === before[i].rev);
      before = now;
      return settled || undefined;
    });
    const eventsBefore = (await h.kv.get(["review_events", a])).versionstamp;
    const done = JSON.stringify({ status: "completed" });
    const [lease, mac] = [
      tokenA.slice(0, tokenA.lastIndexOf(".")),
      tokenA.slice(tokenA.lastIndexOf(".") + 1),
    ];
    const flipped = (mac[0] === "A" ? "B" : "A") + mac.slice(1);
    const cases: Array<[string, string, string, Record<string, string>, number]> = [
      ["no token", a, done, {}, 401],
      ["other review's token", a, done, { "x-callback-token": tokenB }, 401],
      ["truncated mac", a, done, { "x-callback-token": tokenA.slice(0, -1) }, 401],
      ["flipped mac", a, done, { "x-callback-token": `${lease}.${flipped}` }, 401],
      [
        "other lease, same mac",
        a,
        done,
        { "x-callback-token": `${crypto.randomUUID()}.${mac}` },
        401,
      ],
      ["lease token only", a, done, { "x-callback-token": lease }, 401],
      ["bearer instead", a, done, { authorization: "Bearer test-backend-token" }, 401],
      ["non-JSON", a, "{status: completed", { "x-callback-token": tokenA }, 400],
      [
        "unknown status",
        a,
        JSON.stringify({ status: "done" }),
        { "x-callback-token": tokenA },
        400,
      ],
      ["array body", a, "[]", { "x-callback-token": tokenA }, 400],
      ["huge session id", a, JSON.stringify({ status: "completed", sessionId: "s".repeat(201) }), {
        "x-callback-token": tokenA,
      }, 400],
      ["oversized", a, JSON.stringify({ status: "failed", errorMessage: "x".repeat(300_000) }), {
        "x-callback-token": tokenA,
      }, 413],
      ["unknown review", "nope", done, { "x-callback-token": tokenA }, 401],
    ];
    for (const [what, id, body, headers, status] of cases) {
      const res = await postCallback(h, id, body, headers);
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
    }
    const after = [await rawRecord(h, a), await rawRecord(h, b)];
    assert.deepEqual(after.map((r) => [r.status, r.rev]), before.map((r) => [r.status, r.rev]));
    assert.equal((await h.kv.get(["review_events", a])).versionstamp, eventsBefore);
    assert.ok(!JSON.stringify(h.logs).includes(mac), "the callback token is never logged");
  });
});

Deno.test("attack kilo (withstood): five concurrent callbacks apply once; a repeat is a no-op", async () => {
  const kilo = await startFakeKilo((_session, ctl) =>
    kiloStream(kiloReviewFrames(ctl.sessionId).slice(0, 3), ctl, { holdOpen: true })
  );
  await withKilo(kilo, {}, async (h) => {
    const id = (await h.openPull(1, 1)).body.reviewId as string;
    await waitFor("session", () => kilo.sessions.length === 1 || undefined);
    const token = tokenOf(kilo, 0);
    const results = await Promise.all(
      ["completed", "failed", "interrupted", "completed", "failed"].map((status) =>
        postCallback(h, id, JSON.stringify({ status, sessionId: "agent_1" }), {
          "x-callback-token": token,
        })
      ),
    );
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200]);
    assert.equal(results.filter((r) => r.body.applied === true).length, 1);
    const done = await h.waitForStatus(id, ["completed", "failed", "cancelled"]);
    const again = await postCallback(h, id, JSON.stringify({ status: "failed" }), {
      "x-callback-token": token,
    });
    assert.deepEqual(again.body, { ok: true, applied: false });
    const final = await h.review(id);
    assert.equal(final.status, done.status);
    assert.equal(final.rev, done.rev);
    assert.equal((await h.api("GET", "/owners/org/1")).body.active, 0);
    assert.equal(kilo.sessions.length, 1);
  });
});

Deno.test("attack kilo (withstood): a callback before the stream's first byte completes the review once", async () => {
  const kilo = await startFakeKilo(async (_session, ctl) => {
    await ctl.callback({ status: "completed" });
    return kiloStream(kiloReviewFrames(ctl.sessionId), ctl);
  });
  await withKilo(kilo, {}, async (h) => {
    const id = (await h.openPull(1, 1)).body.reviewId as string;
    const done = await h.waitForStatus(id, ["completed", "failed"]);
    assert.equal(done.status, "completed");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(kilo.sessions.length, 1, "no retry after the early callback");
    assert.equal((await h.review(id)).rev, done.rev, "nothing written after the completion");
    assert.equal(kilo.callbacks[0].httpStatus, 200);
  });
});

Deno.test("attack kilo (withstood): the callback of an older attempt is a no-op for the newer one", async () => {
  const kilo = await startFakeKilo((session, ctl) =>
    session.index === 0
      ? kiloStream(kiloReviewFrames(ctl.sessionId).slice(0, 3), ctl)
      : kiloStream(kiloReviewFrames(ctl.sessionId).slice(0, 3), ctl, { holdOpen: true })
  );
  await withKilo(kilo, {}, async (h) => {
    const id = (await h.openPull(1, 1)).body.reviewId as string;
    await waitFor("the retry's session", () => kilo.sessions.length === 2 || undefined);
    await waitFor("attempt 2 running", async () => {
      const r = await rawRecord(h, id);
      return r.status === "running" && r.attempts === 2 ? true : undefined;
    });
    const stale = await postCallback(h, id, JSON.stringify({ status: "failed" }), {
      "x-callback-token": tokenOf(kilo, 0),
    });
    assert.deepEqual(stale.body, { ok: true, applied: false });
    assert.equal((await rawRecord(h, id)).status, "running");
    const fresh = await postCallback(h, id, JSON.stringify({ status: "completed" }), {
      "x-callback-token": tokenOf(kilo, 1),
    });
    assert.deepEqual(fresh.body, { ok: true, applied: true });
    assert.equal((await h.waitForStatus(id, ["completed"])).attempts, 2);
  });
});
