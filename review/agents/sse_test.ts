import assert from "node:assert/strict";
import {
  DEFAULT_FINDINGS,
  reviewScript,
  sseResponse,
  startFakeAgent,
} from "../../tests/fakes/agent.ts";
import type { AgentSessionRequest } from "../agent_events.ts";
import { AttemptAborted, ReviewError } from "../errors.ts";
import { runAgentSession } from "../../tests/sse_session.ts";

const request: AgentSessionRequest = {
  reviewId: "r-1",
  attempt: 2,
  repo: "octo/app",
  pullNumber: 3,
  headSha: "a".repeat(40),
  baseSha: "b".repeat(40),
  title: "Add feature",
  model: "m",
  diff: "diff --git a/x b/x\n",
  files: ["x"],
};

async function run(
  script: Parameters<typeof startFakeAgent>[0],
  options: Partial<Parameters<typeof runAgentSession>[1]> = {},
) {
  const agent = await startFakeAgent(script);
  try {
    const result = await runAgentSession(request, {
      agentUrl: `${agent.url}/`,
      token: "tok",
      idleTimeoutMs: 2_000,
      totalTimeoutMs: 5_000,
      log: () => {},
      ...options,
    });
    return { result, agent };
  } finally {
    await agent.close();
  }
}

async function rejectsWith(
  promise: Promise<unknown>,
  expected: { retryable: boolean; reason?: string; message?: RegExp | string },
) {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof ReviewError, String(e));
    assert.equal(e.retryable, expected.retryable, e.message);
    if (expected.reason) assert.equal(e.reason, expected.reason);
    if (typeof expected.message === "string") assert.equal(e.message, expected.message);
    else if (expected.message) assert.match(e.message, expected.message);
    return true;
  });
}

Deno.test("a full stream gives findings, summary and session id; the request is complete", async () => {
  const { result, agent } = await run(reviewScript({ summary: "fine" }));
  assert.deepEqual(result.findings, DEFAULT_FINDINGS);
  assert.equal(result.summary, "fine");
  assert.equal(result.sessionId, "session-1");
  assert.equal(result.skippedEvents, 0);
  const s = agent.sessions[0];
  assert.equal(s.headers.get("authorization"), "Bearer tok");
  assert.equal(s.headers.get("idempotency-key"), "r-1:2");
  assert.equal(s.headers.get("accept"), "text/event-stream");
  assert.equal(s.headers.get("content-type"), "application/json");
  assert.deepEqual(s.body, request);
});

Deno.test("no token means no Authorization header; status events reach onEvent", async () => {
  const statuses: string[] = [];
  const { agent } = await run(reviewScript(), {
    token: undefined,
    onEvent: (e) => {
      statuses.push(e.message);
      throw new Error("a broken callback must not fail the session");
    },
  });
  assert.equal(agent.sessions[0].headers.get("authorization"), null);
  assert.deepEqual(statuses, ["reviewing"]);
});

Deno.test("done stops reading even if the agent keeps the stream open", async () => {
  const agent = await startFakeAgent(() =>
    sseResponse([{ event: "done", data: {} }, { comment: "late", delayMs: 5_000 }])
  );
  try {
    const started = Date.now();
    await runAgentSession(request, {
      agentUrl: agent.url,
      idleTimeoutMs: 1_000,
      totalTimeoutMs: 2_000,
    });
    assert.ok(Date.now() - started < 1_000);
    while (agent.open !== 0) await new Promise((r) => setTimeout(r, 5));
  } finally {
    await agent.close();
  }
});

Deno.test("findings beyond maxFindings are counted, not kept", async () => {
  const findings = Array.from(
    { length: 5 },
    (_, i) => ({ ...DEFAULT_FINDINGS[1], title: `t${i}` }),
  );
  const { result } = await run(reviewScript({ findings }), { maxFindings: 3 });
  assert.deepEqual(result.findings.map((f) => f.title), ["t0", "t1", "t2"]);
  assert.equal(result.droppedFindings, 2);
});

Deno.test("an event larger than maxEventBytes is final, terminated or not", async () => {
  const big = { message: "x".repeat(2_000) };
  await rejectsWith(
    run(() => sseResponse([{ event: "status", data: big }, { event: "done", data: {} }]), {
      maxEventBytes: 1_000,
    }),
    { retryable: false, reason: "agent_error", message: /exceeds 1000 bytes/ },
  );
  // A line that never ends must not grow the parser's buffer without bound.
  const endless = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(`event: status\ndata: ${"y".repeat(200_000)}`));
    },
  });
  await rejectsWith(
    run(() => new Response(endless, { headers: { "content-type": "text/event-stream" } }), {
      maxEventBytes: 1_000,
    }),
    { retryable: false, reason: "agent_error", message: /^agent event exceeds 1000 bytes/ },
  );
});

Deno.test("events split across one-byte chunks still parse", async () => {
  const { result } = await run(() =>
    sseResponse([
      { event: "finding", data: DEFAULT_FINDINGS[0] },
      { event: "summary", data: { text: "split — ünïcode" } },
      { event: "done", data: {} },
    ], { chunkBytes: 1 })
  );
  assert.deepEqual(result.findings, [DEFAULT_FINDINGS[0]]);
  assert.equal(result.summary, "split — ünïcode");
});

Deno.test("heartbeats keep a slow stream alive past the idle timeout", async () => {
  const beats = Array.from({ length: 6 }, () => ({ comment: "hb", delayMs: 100 }));
  const { result } = await run(
    () => sseResponse([...beats, { event: "done", data: {} }]),
    { idleTimeoutMs: 250 },
  );
  assert.deepEqual(result.findings, []);
});

Deno.test("bad JSON and invalid known events are skipped and counted; unknown events ignored", async () => {
  const logged: unknown[] = [];
  const { result } = await run(() =>
    sseResponse([
      { event: "finding", data: "{not json" },
      { event: "finding", data: { severity: "fatal" } },
      { event: "telemetry", data: { anything: true } },
      { event: "finding", data: DEFAULT_FINDINGS[1] },
      { event: "done", data: {} },
    ]), { log: (_m, context) => logged.push(String(context.why).split(":")[0]) });
  assert.deepEqual(result.findings, [DEFAULT_FINDINGS[1]]);
  assert.equal(result.skippedEvents, 2);
  assert.deepEqual(logged, ["finding", "finding"]);
});

Deno.test("HTTP 503 and 429 are retryable, 400 is final", async () => {
  for (const [status, retryable] of [[503, true], [429, true], [400, false]] as const) {
    await rejectsWith(run(() => new Response("nope", { status })), {
      retryable,
      reason: "agent_error",
      message: `agent answered ${status}: nope`,
    });
  }
});

Deno.test("a non-SSE success is final", async () => {
  await rejectsWith(run(() => Response.json({ ok: true })), { retryable: false });
});

Deno.test("an error event is final with the agent's message unless retryable", async () => {
  await rejectsWith(
    run(() => sseResponse([{ event: "error", data: { message: "diff too large" } }])),
    { retryable: false, message: "diff too large" },
  );
  await rejectsWith(
    run(() => sseResponse([{ event: "error", data: { message: "busy", retryable: true } }])),
    { retryable: true, message: "busy" },
  );
});

Deno.test("a stream that ends without done is retryable", async () => {
  await rejectsWith(
    run(() =>
      sseResponse([{ event: "summary", data: { text: "x" } }, { event: "done", data: {} }], {
        endWithoutDone: true,
      })
    ),
    { retryable: true, message: /without done/ },
  );
});

Deno.test("silence past the idle timeout is retryable", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const started = Date.now();
  await rejectsWith(
    run(() => sseResponse([{ event: "done", data: {} }], { holdUntil: gate }), {
      idleTimeoutMs: 200,
    }),
    { retryable: true, message: /idle/ },
  );
  release();
  assert.ok(Date.now() - started < 2_000);
});

Deno.test("the total timeout is final with reason timeout", async () => {
  const beats = Array.from({ length: 20 }, () => ({ comment: "hb", delayMs: 50 }));
  await rejectsWith(
    run(() => sseResponse([...beats, { event: "done", data: {} }]), {
      idleTimeoutMs: 500,
      totalTimeoutMs: 300,
    }),
    { retryable: false, reason: "timeout" },
  );
});

Deno.test("an external abort rethrows its reason and closes the stream", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const controller = new AbortController();
  const agent = await startFakeAgent(() =>
    sseResponse([{ event: "status", data: { message: "x" } }, { event: "done", data: {} }], {
      holdUntil: gate,
    })
  );
  try {
    const session = runAgentSession(request, {
      agentUrl: agent.url,
      idleTimeoutMs: 5_000,
      totalTimeoutMs: 5_000,
      signal: controller.signal,
    });
    while (agent.open === 0) await new Promise((r) => setTimeout(r, 5));
    const reason = new AttemptAborted("stop_requested");
    controller.abort(reason);
    await assert.rejects(session, (e) => e === reason);
    while (agent.open !== 0) await new Promise((r) => setTimeout(r, 5));
  } finally {
    release();
    await agent.close();
  }
});

Deno.test("a refused connection is retryable", async () => {
  await rejectsWith(
    runAgentSession(request, {
      agentUrl: "http://127.0.0.1:9",
      idleTimeoutMs: 1_000,
      totalTimeoutMs: 1_000,
    }),
    { retryable: true, message: /connection failed/ },
  );
});
