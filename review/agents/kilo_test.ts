import assert from "node:assert/strict";
import { ReviewError } from "../errors.ts";
import type { AgentContext, AgentEvent, AgentRequest } from "./agent.ts";
import { createKiloAgent, kiloPrompt } from "./kilo.ts";
import {
  type KiloFrame,
  kiloReviewFrames,
  kiloScript,
  kiloStream,
  startFakeKilo,
} from "../../tests/fakes/kilo.ts";

const CALLBACK = {
  url: "http://127.0.0.1:9/callbacks/reviews/r1",
  headers: { "x-callback-token": "cb-secret" },
};

function request(over: Partial<AgentRequest> = {}): AgentRequest {
  return {
    reviewId: "r1",
    attempt: 1,
    repo: "octo/app",
    pullNumber: 7,
    headSha: "a".repeat(40),
    baseSha: "b".repeat(40),
    title: "Fix login",
    body: "The form broke.",
    headRef: "fix-login",
    model: "anthropic/claude-sonnet-4",
    instructions: "Focus on auth.",
    diff: "",
    files: [],
    callback: CALLBACK,
    ...over,
  };
}

function collect(signal = new AbortController().signal) {
  const events: AgentEvent[] = [];
  const logs: string[] = [];
  const ctx: AgentContext = {
    signal,
    emit: (event) => events.push(event),
    fetch,
    log: (message, context) => logs.push(`${message} ${JSON.stringify(context)}`),
  };
  return { events, logs, ctx };
}

const agentFor = (url: string, over: { idleTimeoutMs?: number; callbackWaitMs?: number } = {}) =>
  createKiloAgent({
    baseUrl: `${url}/`,
    token: "service-token",
    githubToken: "gh-token",
    idleTimeoutMs: over.idleTimeoutMs ?? 2_000,
    callbackWaitMs: over.callbackWaitMs ?? 200,
    maxEventBytes: 1024,
  });

const ofType = <T extends AgentEvent["type"]>(events: AgentEvent[], type: T) =>
  events.filter((e): e is Extract<AgentEvent, { type: T }> => e.type === type);

/**
 * The query string fetch sends for `input`: `encodeURIComponent` as the original builds it, then
 * the URL standard's query encoding (which also escapes `'`).
 */
const wireQuery = (input: unknown) =>
  new URL(`http://x/?input=${encodeURIComponent(JSON.stringify(input))}`).search;

/** Resolves once `check` holds, polling every 5 ms. */
async function until(check: () => boolean) {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

Deno.test("kilo: GET initiateSessionAsync with the built session input, callback and bearer", async () => {
  const kilo = await startFakeKilo();
  try {
    const { ctx } = collect();
    await agentFor(kilo.url).review(request({ authToken: "review-token" }), ctx);
    const [session] = kilo.sessions;
    const expected = {
      githubRepo: "octo/app",
      prompt: kiloPrompt(request()),
      mode: "code",
      model: "anthropic/claude-sonnet-4",
      upstreamBranch: "fix-login",
      githubToken: "gh-token",
      createdOnPlatform: "code-review",
      callbackUrl: CALLBACK.url,
      callbackHeaders: CALLBACK.headers,
    };
    assert.equal(session.search, wireQuery(expected));
    assert.deepEqual(session.input, expected);
    assert.equal(session.headers.get("authorization"), "Bearer review-token");
    assert.equal(session.headers.get("accept"), "text/event-stream");
    for (const part of ["#7", "octo/app", "a".repeat(40), "Fix login", "The form broke.", "auth"]) {
      assert.ok(expected.prompt.includes(part), part);
    }
  } finally {
    await kilo.close();
  }
});

Deno.test("kilo: a given sessionInput passes through; the agent's own token is the fallback", async () => {
  const kilo = await startFakeKilo();
  try {
    const sessionInput = {
      githubRepo: "octo/other",
      prompt: "Review it",
      mode: "code",
      model: "x/y",
      upstreamBranch: "main",
      kilocodeOrganizationId: "org-1",
    };
    const { ctx } = collect();
    await agentFor(kilo.url).review(request({ sessionInput }), ctx);
    const expected = {
      ...sessionInput,
      createdOnPlatform: "code-review",
      callbackUrl: CALLBACK.url,
      callbackHeaders: CALLBACK.headers,
    };
    assert.equal(kilo.sessions[0].search, wireQuery(expected));
    assert.equal(kilo.sessions[0].headers.get("authorization"), "Bearer service-token");
  } finally {
    await kilo.close();
  }
});

Deno.test("kilo: maps the stream, then waits for the callback and fails retryably", async () => {
  const kilo = await startFakeKilo(kiloScript({ chunkBytes: 7 }));
  try {
    const { events, ctx } = collect();
    const started = Date.now();
    await agentFor(kilo.url, { callbackWaitMs: 200 }).review(request(), ctx);
    assert.ok(Date.now() - started >= 200);
    assert.deepEqual(ofType(events, "session"), [{ type: "session", sessionId: "agent_1" }]);
    assert.deepEqual(ofType(events, "usage"), [{
      type: "usage",
      model: "anthropic/claude-sonnet-4",
      tokensIn: 1200,
      tokensOut: 340,
      cost: 0.0123,
    }]);
    assert.deepEqual(ofType(events, "status").map((e) => e.message), [
      "Starting",
      "Anthropic request: 1,200 tokens in, 340 tokens out",
      "Reviewing src/app.ts",
      "Using github/pull_request_review_write",
    ]);
    const last = events.at(-1)!;
    assert.equal(last.type, "error");
    assert.equal(last.type === "error" && last.retryable, true);
    assert.match(last.type === "error" ? last.message : "", /without a callback within 200 ms/);
    assert.ok(!events.some((e) => e.type === "done"));
  } finally {
    await kilo.close();
  }
});

Deno.test("kilo: usage increments per request; bad data lines are skipped, pings ignored", async () => {
  const call = (tokensIn: number, cost?: number) => ({
    data: {
      streamEventType: "kilocode",
      sessionId: "agent_1",
      payload: { say: "api_req_started", metadata: { tokensIn, tokensOut: 10, cost } },
    },
  });
  const frames: KiloFrame[] = [
    call(100, 0.5),
    { data: "" },
    { data: ":ping" },
    { data: "{not json" },
    { data: "42" },
    call(50),
    { data: { streamEventType: "error", error: "sandbox lost", sessionId: "agent_1" } },
    { data: { streamEventType: "complete", sessionId: "agent_1" } },
  ];
  const kilo = await startFakeKilo(kiloScript({ frames: () => frames }));
  try {
    const { events, ctx } = collect();
    await agentFor(kilo.url, { callbackWaitMs: 10 }).review(request(), ctx);
    assert.deepEqual(ofType(events, "usage"), [
      { type: "usage", tokensIn: 100, tokensOut: 10, cost: 0.5 },
      { type: "usage", tokensIn: 50, tokensOut: 10 },
    ]);
    assert.equal(ofType(events, "skipped").length, 2);
    assert.deepEqual(ofType(events, "session").length, 1);
    assert.ok(ofType(events, "status").some((e) => e.message === "sandbox lost"));
  } finally {
    await kilo.close();
  }
});

Deno.test("kilo: an oversized event is skipped and the stream goes on", async () => {
  const frames: KiloFrame[] = [
    { data: { streamEventType: "kilocode", payload: { say: "text", content: "x".repeat(5000) } } },
    { data: { streamEventType: "status", sessionId: "agent_1", message: "after" } },
    { data: { streamEventType: "complete", sessionId: "agent_1" } },
  ];
  for (const chunkBytes of [undefined, 512]) {
    const kilo = await startFakeKilo(kiloScript({ frames: () => frames, chunkBytes }));
    try {
      const { events, ctx } = collect();
      await agentFor(kilo.url, { callbackWaitMs: 10 }).review(request(), ctx);
      assert.equal(ofType(events, "skipped").length, 1);
      assert.deepEqual(ofType(events, "status").map((e) => e.message), ["after"]);
    } finally {
      await kilo.close();
    }
  }
});

Deno.test("kilo: the callback's abort during the wait rethrows its reason, no interrupt", async () => {
  const controller = new AbortController();
  const reason = new Error("callback arrived");
  const received: { headers: Headers; body: unknown }[] = [];
  const service = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    received.push({ headers: req.headers, body: await req.json() });
    controller.abort(reason);
    return new Response(null, { status: 204 });
  });
  const kilo = await startFakeKilo(kiloScript({ callback: { status: "completed", delayMs: 30 } }));
  try {
    const callback = { ...CALLBACK, url: `http://127.0.0.1:${service.addr.port}/callbacks/r1` };
    const { events, ctx } = collect(controller.signal);
    const agent = agentFor(kilo.url, { callbackWaitMs: 5_000 });
    await assert.rejects(agent.review(request({ callback }), ctx), (e) => e === reason);
    assert.deepEqual(received.map((r) => r.body), [{ sessionId: "agent_1", status: "completed" }]);
    assert.equal(received[0].headers.get("x-callback-token"), "cb-secret");
    assert.equal(kilo.interrupts.length, 0);
    assert.ok(!events.some((e) => e.type === "error" || e.type === "done"));
  } finally {
    await kilo.close();
    await service.shutdown();
  }
});

Deno.test("kilo: an abort mid-stream interrupts the session once, then rethrows", async () => {
  const received: unknown[] = [];
  const service = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    received.push(await req.json());
    return new Response(null, { status: 204 });
  });
  const kilo = await startFakeKilo(kiloScript({
    frames: (id) => kiloReviewFrames(id).slice(0, 3),
    holdOpen: true,
    callback: { status: "completed" },
  }));
  try {
    const controller = new AbortController();
    const reason = new Error("cancelled by user");
    const { events, ctx } = collect(controller.signal);
    const callback = { ...CALLBACK, url: `http://127.0.0.1:${service.addr.port}/callbacks/r1` };
    const running = agentFor(kilo.url).review(
      request({ authToken: "review-token", callback }),
      ctx,
    );
    await until(() => events.some((e) => e.type === "usage"));
    controller.abort(reason);
    await assert.rejects(running, (e) => e === reason);
    assert.equal(kilo.interrupts.length, 1);
    assert.deepEqual(kilo.interrupts[0].body, { sessionId: "agent_1" });
    assert.equal(kilo.interrupts[0].headers.get("authorization"), "Bearer review-token");
    assert.equal(kilo.interrupts[0].headers.get("content-type"), "application/json");
    // The fake ends the session as the real agent does: its callback says `interrupted`.
    await until(() => received.length === 1);
    assert.deepEqual(received, [{ sessionId: "agent_1", status: "interrupted" }]);
  } finally {
    await kilo.close();
    await service.shutdown();
  }
});

Deno.test("kilo: a failing interruptSession is logged, the reason still rethrown", async () => {
  const kilo = await startFakeKilo((_s, ctl) =>
    kiloStream([{ data: { streamEventType: "status", sessionId: "agent_9" } }], ctl, {
      holdOpen: true,
    })
  );
  try {
    const controller = new AbortController();
    const { events, logs, ctx } = collect(controller.signal);
    ctx.fetch = (input, init) =>
      String(input).endsWith("/trpc/interruptSession")
        ? Promise.reject(new TypeError("connection reset"))
        : fetch(input, init);
    const running = agentFor(kilo.url).review(request(), ctx);
    await until(() => events.length > 0);
    controller.abort("stop");
    await assert.rejects(running, (e) => e === "stop");
    assert.equal(logs.length, 1);
    assert.match(logs[0], /interruptSession failed.*agent_9.*connection reset/);
  } finally {
    await kilo.close();
  }
});

Deno.test("kilo: HTTP failures before the stream", async (t) => {
  const cases: [string, Response, Partial<Extract<AgentEvent, { type: "error" }>>][] = [
    ["429", new Response("slow down", { status: 429, headers: { "retry-after": "7" } }), {
      retryable: true,
      rateLimited: true,
      retryAfterMs: 7000,
    }],
    ["401", new Response("bad token", { status: 401 }), { retryable: false }],
    ["503", new Response("busy", { status: 503 }), { retryable: true }],
    ["json", Response.json({ ok: true }), { retryable: false }],
  ];
  for (const [name, response, expected] of cases) {
    await t.step(name, async () => {
      const kilo = await startFakeKilo(() => response);
      try {
        const { events, ctx } = collect();
        await agentFor(kilo.url, { callbackWaitMs: 60_000 }).review(request(), ctx);
        assert.equal(events.length, 1);
        const [event] = events;
        assert.equal(event.type, "error");
        assert.deepEqual({ ...event, message: undefined }, {
          type: "error",
          message: undefined,
          ...expected,
        });
        if (name === "401") assert.match(event.type === "error" ? event.message : "", /401.*bad/);
      } finally {
        await kilo.close();
      }
    });
  }
});

Deno.test("kilo: connection refused is retryable at once", async () => {
  const closed = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(),
  );
  await closed.shutdown();
  const { events, ctx } = collect();
  const started = Date.now();
  await agentFor(`http://127.0.0.1:${closed.addr.port}`, { callbackWaitMs: 60_000 })
    .review(request(), ctx);
  assert.ok(Date.now() - started < 5_000);
  assert.equal(events.length, 1);
  assert.equal(events[0].type === "error" && events[0].retryable, true);
});

Deno.test("kilo: a silent stream times out, then the callback decides", async () => {
  const kilo = await startFakeKilo(kiloScript({ frames: () => [], holdOpen: true }));
  try {
    const { events, ctx } = collect();
    await agentFor(kilo.url, { idleTimeoutMs: 100, callbackWaitMs: 50 }).review(request(), ctx);
    assert.equal(events.length, 1);
    assert.equal(events[0].type === "error" && events[0].retryable, true);
    assert.match(events[0].type === "error" ? events[0].message : "", /no data for 100 ms/);
    assert.equal(kilo.interrupts.length, 0);
  } finally {
    await kilo.close();
  }
});

Deno.test("kilo: a stream cut before complete waits; an abort then interrupts", async () => {
  const frames = (id: string) => kiloReviewFrames(id).slice(0, 3);
  const kilo = await startFakeKilo(kiloScript({ frames }));
  try {
    const { events, ctx } = collect();
    await agentFor(kilo.url, { callbackWaitMs: 50 }).review(request(), ctx);
    const last = events.at(-1)!;
    assert.equal(last.type === "error" && last.retryable, true);
    assert.match(
      last.type === "error" ? last.message : "",
      /without complete\) without a callback/,
    );
    // The next attempt opens a new session: the one that may still run is stopped first.
    assert.deepEqual(kilo.interrupts.map((i) => i.body), [{ sessionId: "agent_1" }]);

    // The remote session may still run and post: a cancel during the wait stops it.
    const controller = new AbortController();
    const cut = collect(controller.signal);
    const running = agentFor(kilo.url, { callbackWaitMs: 5_000 }).review(request(), cut.ctx);
    await until(() => kilo.sessions.length === 2 && cut.events.some((e) => e.type === "usage"));
    await new Promise((r) => setTimeout(r, 20));
    controller.abort("cancelled");
    await assert.rejects(running, (e) => e === "cancelled");
    assert.deepEqual(kilo.interrupts.map((i) => i.body), [
      { sessionId: "agent_1" },
      { sessionId: "agent_2" },
    ]);
  } finally {
    await kilo.close();
  }
});

Deno.test("kilo: no callback configured is a final ReviewError", async () => {
  const { ctx } = collect();
  const agent = agentFor("http://127.0.0.1:9");
  assert.equal(agent.kind, "kilo");
  assert.equal(agent.decidesOutcome, true);
  await assert.rejects(
    agent.review(request({ callback: undefined }), ctx),
    (e) => e instanceof ReviewError && !e.retryable && /PUBLIC_URL/.test(e.message),
  );
});
