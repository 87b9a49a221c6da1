/**
 * The `kilo` kind through the real service: the agent posts to GitHub itself and its callback to
 * `POST /callbacks/reviews/:id` decides the outcome, for the current attempt only; cancel
 * interrupts the remote session; a stream without a callback is retried.
 */
import assert from "node:assert/strict";
import { CALLBACK_TOKEN_HEADER } from "../review/callback_token.ts";
import { kiloReviewFrames, kiloScript, startFakeKilo } from "./fakes/kilo.ts";
import { type Harness, waitFor, withHarness } from "./harness.ts";

async function withKilo(
  script: Parameters<typeof startFakeKilo>[0],
  env: Record<string, string>,
  fn: (h: Harness, kilo: Awaited<ReturnType<typeof startFakeKilo>>) => Promise<void>,
) {
  const kilo = await startFakeKilo(script);
  try {
    await withHarness("kv-queue", {
      env: {
        AGENT_KIND: "kilo",
        AGENT_URL: kilo.url,
        AGENT_CALLBACK_WAIT_MS: "300",
        PROGRESS_WRITE_MS: "1000",
        FAST_PATH: "true",
        ...env,
      },
    }, (h) => fn(h, kilo));
  } finally {
    await kilo.close();
  }
}

Deno.test("kilo: the callback completes the review; session id and usage are stored, we post nothing", async () => {
  await withKilo(
    kiloScript({ callback: { status: "completed", delayMs: 20 } }),
    {},
    async (h, kilo) => {
      const { body } = await h.openPull(1, 1);
      const id = body.reviewId as string;
      const done = await h.waitForStatus(id, ["completed"]);
      assert.equal(done.sessionId, "agent_1");
      assert.deepEqual(done.usage, {
        model: "anthropic/claude-sonnet-4",
        tokensIn: 1200,
        tokensOut: 340,
        cost: 0.0123,
      });
      assert.equal(h.github.comments.length, 0, "in this mode the agent posts to GitHub itself");
      const [session] = kilo.sessions;
      assert.equal(session.headers.get("authorization"), "Bearer test-agent-token");
      assert.equal(session.headers.get("accept"), "text/event-stream");
      assert.equal(session.input.callbackUrl, `${h.url}/callbacks/reviews/${id}`);
      assert.equal(session.input.createdOnPlatform, "code-review");
      assert.equal(session.input.githubRepo, "owner1/service");
      const headers = session.input.callbackHeaders as Record<string, string>;
      assert.match(headers[CALLBACK_TOKEN_HEADER], /^[\w-]+\.[\w-]{43}$/);
      assert.deepEqual(kilo.callbacks.map((c) => c.httpStatus), [200]);
      assert.equal(kilo.interrupts.length, 0, "a completed session is not interrupted");
      const events = (await h.api("GET", `/reviews/${id}/events`)).body.events as Array<
        { type: string; message: string }
      >;
      assert.ok(
        events.some((e) => e.message === "Anthropic request: 1,200 tokens in, 340 tokens out"),
      );
    },
  );
});

Deno.test("kilo: failed ends the review as failed with the agent's message; interrupted as cancelled", async () => {
  for (const [status, expected] of [["failed", "failed"], ["interrupted", "cancelled"]] as const) {
    await withKilo(
      kiloScript({ callback: { status, errorMessage: "no credits left", delayMs: 10 } }),
      {},
      async (h) => {
        const { body } = await h.openPull(1, 1);
        const done = await h.waitForStatus(body.reviewId as string, [expected]);
        assert.equal(done.attempts, 1);
        if (status === "failed") assert.equal(done.errorMessage, "no credits left");
        assert.equal((await h.api("GET", "/owners/org/1")).body.active, 0, "slot freed");
      },
    );
  }
});

Deno.test("kilo: no callback means a retry; the first attempt's late callback changes nothing", async () => {
  let firstToken = "";
  await withKilo(
    (session, ctl) =>
      session.index === 0
        ? kiloScript()(session, ctl) // streams to `complete`, never calls back
        : kiloScript({ callback: { status: "completed", delayMs: 100 } })(session, ctl),
    { MAX_ATTEMPTS: "2" },
    async (h, kilo) => {
      const { body } = await h.openPull(1, 1);
      const id = body.reviewId as string;
      await waitFor("the second session", () => kilo.sessions.length === 2 ? true : undefined);
      const headers = (s: number) =>
        kilo.sessions[s].input.callbackHeaders as Record<string, string>;
      firstToken = headers(0)[CALLBACK_TOKEN_HEADER];
      assert.notEqual(firstToken, headers(1)[CALLBACK_TOKEN_HEADER], "one token per attempt");
      // The first attempt's agent calls back late, while the second runs: a no-op.
      const late = await fetch(`${h.url}/callbacks/reviews/${id}`, {
        method: "POST",
        headers: { "content-type": "application/json", [CALLBACK_TOKEN_HEADER]: firstToken },
        body: JSON.stringify({ status: "failed", sessionId: "agent_1", errorMessage: "late" }),
      });
      assert.equal(late.status, 200);
      assert.deepEqual(await late.json(), { ok: true, applied: false });
      const done = await h.waitForStatus(id, ["completed"]);
      assert.equal(done.attempts, 2);
      assert.equal(done.sessionId, "agent_2");
    },
  );
});

Deno.test("kilo: cancel of a running review interrupts the remote session", async () => {
  await withKilo(
    // Still working: no `complete` yet.
    kiloScript({ holdOpen: true, frames: (id) => kiloReviewFrames(id).slice(0, -1) }),
    {},
    async (h, kilo) => {
      const { body } = await h.openPull(1, 1);
      const id = body.reviewId as string;
      await waitFor("the session id on the record", async () => {
        const r = await h.review(id);
        return r.sessionId === "agent_1" ? r : undefined;
      });
      const cancel = await h.api("POST", `/reviews/${id}/cancel`, { reason: "not needed" });
      assert.ok([200, 202].includes(cancel.status));
      const done = await h.waitForStatus(id, ["cancelled"]);
      assert.equal(done.terminalReason, "cancelled");
      await waitFor("the interrupt", () => kilo.interrupts.length === 1 ? true : undefined);
      const [interrupt] = kilo.interrupts;
      assert.deepEqual(interrupt.body, { sessionId: "agent_1" });
      assert.equal(interrupt.headers.get("authorization"), "Bearer test-agent-token");
    },
  );
});

Deno.test("callbacks: a missing, forged or other review's token is 401; a bad body 400; nothing changes", async () => {
  await withKilo(kiloScript({ holdOpen: true }), {}, async (h, kilo) => {
    const a = (await h.openPull(1, 1)).body.reviewId as string;
    const b = (await h.openPull(2, 2)).body.reviewId as string;
    await waitFor("two sessions", () => kilo.sessions.length === 2 ? true : undefined);
    const tokenOf = (id: string) => {
      const s = kilo.sessions.find((s) => String(s.input.callbackUrl).endsWith(id))!;
      return (s.input.callbackHeaders as Record<string, string>)[CALLBACK_TOKEN_HEADER];
    };
    const before = await h.review(a);
    const post = (token: string | null, body: unknown) =>
      fetch(`${h.url}/callbacks/reviews/${a}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(token === null ? {} : { [CALLBACK_TOKEN_HEADER]: token }),
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const completed = { status: "completed" };
    const good = tokenOf(a);
    const forged = good.slice(0, -2) + (good.endsWith("AA") ? "BB" : "AA");
    assert.equal((await post(null, completed)).status, 401);
    assert.equal((await post("nonsense", completed)).status, 401);
    assert.equal((await post(forged, completed)).status, 401);
    assert.equal((await post(tokenOf(b), completed)).status, 401, "b's token is worthless for a");
    assert.equal((await post(good, "{not json")).status, 400);
    assert.equal((await post(good, { status: "exploded" })).status, 400);
    assert.equal(
      (await post(good, { status: "completed", sessionId: "x".repeat(300) })).status,
      400,
    );
    const after = await h.review(a);
    assert.equal(after.status, "running");
    assert.equal(after.rev, before.rev, "a refused callback writes nothing");
    assert.ok(
      !JSON.stringify(h.logs).includes(good.split(".")[1]),
      "the token never reaches the logs",
    );
    assert.deepEqual((await post(good, completed)).body, { ok: true, applied: true });
    assert.equal((await h.waitForStatus(a, ["completed"])).attempts, 1);
  });
});
