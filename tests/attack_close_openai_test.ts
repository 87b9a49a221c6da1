/**
 * Attacks on the openai agent after its move onto `openStream`: an abort at every stage (before
 * the response headers, while an error body is read, mid-stream, at the usage chunk), idle
 * timeouts at every stage, error statuses and cut streams. The error events and abort reasons
 * must be exactly what review/agents/openai_test.ts expects.
 */
import assert from "node:assert/strict";
import { chatChunk, completionStream } from "./fakes/openai.ts";
import type { AgentEvent, AgentRequest } from "../review/agents/agent.ts";
import { createOpenAiAgent } from "../review/agents/openai.ts";

const request: AgentRequest = {
  reviewId: "r-1",
  attempt: 1,
  repo: "octo/app",
  pullNumber: 7,
  headSha: "a".repeat(40),
  baseSha: "b".repeat(40),
  title: "Add login",
  diff: "diff --git a/src/a.ts b/src/a.ts\n@@ -1,1 +1,3 @@\n x\n+eval(input)\n+y\n",
  files: ["src/a.ts"],
};

const encoder = new TextEncoder();
const frame = (data: string) => encoder.encode(`data: ${data}\n\n`);
const FINDING = JSON.stringify({
  severity: "warning",
  file_path: "src/a.ts",
  line_number: 2,
  title: "eval",
  description: "d",
});

/**
 * A body whose chunks the test hands out one by one; `cancelled` resolves when the reader
 * cancels it. `onCancel` runs inside the cancel (before it settles).
 */
function controlledBody(onCancel: () => void | Promise<void> = () => {}) {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  let cancelledResolve!: () => void;
  const cancelled = new Promise<void>((r) => cancelledResolve = r);
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      ctrl = c;
    },
    async cancel() {
      await onCancel();
      cancelledResolve();
    },
  });
  return {
    stream,
    cancelled,
    push: (bytes: Uint8Array) => ctrl.enqueue(bytes),
    close: () => ctrl.close(),
    error: (e: unknown) => ctrl.error(e),
  };
}

/**
 * A fetch that answers `respond(init.signal)`; as `fetch` does, an abort rejects the request
 * (before headers) or errors the body (after) with the signal's reason.
 */
function fakeFetch(respond: (signal: AbortSignal) => Response | Promise<Response>): typeof fetch {
  return (_input, init) =>
    new Promise<Response>((resolve, reject) => {
      const signal = init!.signal!;
      if (signal.aborted) return reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      Promise.resolve(respond(signal)).then((response) => {
        if (!response.body) return resolve(response);
        const inner = response.body.getReader();
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            signal.addEventListener("abort", () => {
              controller.error(signal.reason);
              inner.cancel(signal.reason).catch(() => {});
            }, { once: true });
          },
          async pull(controller) {
            const { done, value } = await inner.read();
            if (signal.aborted) return;
            if (done) controller.close();
            else controller.enqueue(value);
          },
          cancel: (why) => inner.cancel(why),
        });
        resolve(new Response(body, { status: response.status, headers: response.headers }));
      }, reject);
    });
}

async function review(
  fetchImpl: typeof fetch,
  options: { signal?: AbortSignal; idleTimeoutMs?: number; onEvent?: (e: AgentEvent) => void } = {},
) {
  const events: AgentEvent[] = [];
  const agent = createOpenAiAgent({
    baseUrl: "http://openai.invalid/v1",
    token: "sk",
    model: "m",
    maxInputBytes: 64 * 1024,
    idleTimeoutMs: options.idleTimeoutMs ?? 5_000,
  });
  let outcome: { ok: true } | { ok: false; error: unknown };
  try {
    await agent.review(request, {
      signal: options.signal ?? new AbortController().signal,
      emit: (e) => {
        events.push(e);
        options.onEvent?.(e);
      },
      fetch: fetchImpl,
      log: () => {},
    });
    outcome = { ok: true };
  } catch (error) {
    outcome = { ok: false, error };
  }
  return { events, outcome, types: events.map((e) => e.type) };
}

const sse = (body: ReadableStream<Uint8Array>, status = 200) =>
  new Response(body, { status, headers: { "content-type": "text/event-stream" } });

for (const status of [503, 401, 429]) {
  Deno.test(`attack openai: an abort while the ${status} error body is read rejects with the exact reason`, async () => {
    const controller = new AbortController();
    const reason = { why: "pr_closed" };
    const body = controlledBody();
    const fetchImpl = fakeFetch(() => {
      body.push(encoder.encode('{"error":{"message":"partial'));
      // The rest of the body never comes; the session is aborted while it is read.
      setTimeout(() => controller.abort(reason), 50);
      return new Response(body.stream, { status });
    });
    const { outcome, types } = await review(fetchImpl, { signal: controller.signal });
    assert.deepEqual(types, ["status"], "no error event after the abort");
    assert.ok(!outcome.ok && outcome.error === reason, `outcome: ${JSON.stringify(outcome)}`);
  });
}

Deno.test("attack openai (withstood): an abort before the response headers rejects with the exact reason", async () => {
  const controller = new AbortController();
  const reason = { why: "cancelled" };
  let seen: AbortSignal | undefined;
  const fetchImpl = fakeFetch((signal) => {
    seen = signal;
    setTimeout(() => controller.abort(reason), 30);
    return new Promise<Response>(() => {});
  });
  const { outcome, types } = await review(fetchImpl, { signal: controller.signal });
  assert.deepEqual(types, ["status"]);
  assert.ok(!outcome.ok && outcome.error === reason);
  assert.equal(seen?.aborted, true, "the request itself was aborted");
});

Deno.test("attack openai (withstood): an abort at the usage chunk rejects with the reason and reports no usage", async () => {
  const controller = new AbortController();
  const reason = { why: "superseded" };
  const body = controlledBody();
  const fetchImpl = fakeFetch(() => {
    body.push(frame(chatChunk({ content: FINDING + "\n" })));
    body.push(frame(chatChunk({}, { finishReason: "stop" })));
    return sse(body.stream);
  });
  const run = review(fetchImpl, {
    signal: controller.signal,
    onEvent(e) {
      if (e.type === "finding") {
        setTimeout(() => {
          body.push(frame(chatChunk(null, {
            usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 },
          })));
          setTimeout(() => controller.abort(reason), 0);
        }, 10);
      }
    },
  });
  const { outcome, types } = await run;
  assert.ok(!outcome.ok && outcome.error === reason, JSON.stringify(outcome));
  assert.deepEqual(types, ["status", "finding"]);
  await body.cancelled;
});

Deno.test("attack openai (withstood): idle before headers, within the stream: exact retryable events", async () => {
  const never = fakeFetch(() => new Promise<Response>(() => {}));
  const before = await review(never, { idleTimeoutMs: 100 });
  assert.ok(before.outcome.ok);
  assert.deepEqual(before.events.at(-1), {
    type: "error",
    message: "openai idle timeout: no data for 100 ms",
    retryable: true,
  });
  const body = controlledBody();
  const within = await review(
    fakeFetch(() => {
      body.push(frame(chatChunk({ content: FINDING + "\n" })));
      return sse(body.stream);
    }),
    { idleTimeoutMs: 100 },
  );
  assert.deepEqual(within.types, ["status", "finding", "error"]);
  assert.deepEqual(within.events.at(-1), {
    type: "error",
    message: "openai idle timeout: no data for 100 ms",
    retryable: true,
  });
  await body.cancelled;
});

Deno.test("attack openai (withstood): an error body that stalls is bounded by the idle timeout", async () => {
  const body = controlledBody();
  const started = Date.now();
  const { events, outcome } = await review(
    fakeFetch(() => {
      body.push(encoder.encode("upstream "));
      return new Response(body.stream, { status: 502, headers: { "retry-after": "3" } });
    }),
    { idleTimeoutMs: 150 },
  );
  assert.ok(outcome.ok);
  assert.ok(Date.now() - started < 3_000, "the stalled body was not read forever");
  const last = events.at(-1) as Extract<AgentEvent, { type: "error" }>;
  assert.equal(last.type, "error");
  assert.equal(last.retryable, true);
  assert.equal(events.filter((e) => e.type === "error").length, 1);
});

Deno.test("attack openai (withstood): a stream cut by a network error is retryable with its message", async () => {
  const body = controlledBody();
  const { events, outcome } = await review(fakeFetch(() => {
    body.push(frame(chatChunk({ content: FINDING + "\n" })));
    body.push(frame(chatChunk(null, {
      usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 },
    })));
    setTimeout(() => body.error(new TypeError("connection reset")), 20);
    return sse(body.stream);
  }));
  assert.ok(outcome.ok);
  assert.deepEqual(events.map((e) => e.type), ["status", "finding", "usage", "error"]);
  assert.deepEqual(events.at(-1), {
    type: "error",
    message: "openai stream broke: connection reset",
    retryable: true,
  });
});

Deno.test("attack openai (withstood): 429 without retry-after, 408, 400 and an empty body", async () => {
  const one = async (response: () => Response) =>
    (await review(fakeFetch(response))).events.filter((e) => e.type !== "status");
  assert.deepEqual(await one(() => new Response("slow", { status: 429 })), [{
    type: "error",
    message: "openai answered 429: slow",
    retryable: true,
    rateLimited: true,
  }]);
  assert.deepEqual(
    await one(() => new Response("t", { status: 408, headers: { "retry-after": "2" } })),
    [{ type: "error", message: "openai answered 408: t", retryable: true, retryAfterMs: 2000 }],
  );
  assert.deepEqual(
    await one(() => new Response("bad", { status: 400, headers: { "retry-after": "2" } })),
    [{ type: "error", message: "openai answered 400: bad", retryable: false }],
  );
  assert.deepEqual(await one(() => new Response(null, { status: 500 })), [
    { type: "error", message: "openai answered 500: ", retryable: true },
  ]);
});

Deno.test("attack openai (withstood): a real server's stream that ends without [DONE] mid-line", async () => {
  const { events } = await review(
    fakeFetch(() => completionStream(FINDING + '\n{"sev', { done: false, usage: null })),
  );
  assert.deepEqual(events.map((e) => e.type), ["status", "finding", "error"]);
  assert.deepEqual(events.at(-1), {
    type: "error",
    message: "openai stream ended without [DONE]",
    retryable: true,
  });
});
