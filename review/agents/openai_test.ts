import assert from "node:assert/strict";
import { createParser } from "eventsource-parser";
import {
  chatChunk,
  completionStream,
  type OpenAiScript,
  startFakeOpenAi,
} from "../../tests/fakes/openai.ts";
import type { AgentFinding } from "../agent_events.ts";
import { ReviewError } from "../errors.ts";
import type { AgentContext, AgentEvent, AgentRequest } from "./agent.ts";
import { createOpenAiAgent, type OpenAiAgentOptions } from "./openai.ts";
import {
  type AssembledLine,
  createLineAssembler,
  parseCompletionChunk,
  parseFindingLine,
} from "./openai_lines.ts";
import { promptBytes } from "./openai_prompt.ts";

const request: AgentRequest = {
  reviewId: "r-1",
  attempt: 1,
  repo: "octo/app",
  pullNumber: 7,
  headSha: "a".repeat(40),
  baseSha: "b".repeat(40),
  title: "Add login",
  body: "Closes #3",
  diff: "diff --git a/src/a.ts b/src/a.ts\n@@ -1,1 +1,3 @@\n x\n+eval(input)\n+y\n",
  files: ["src/a.ts"],
};

const FINDINGS: AgentFinding[] = [
  {
    severity: "critical",
    file_path: "src/a.ts",
    line_number: 2,
    title: "eval on input — runs anything",
    description: "Evaluating request input runs arbitrary code 🙈.",
    suggestion: "JSON.parse(input)",
    agent_type: "openai",
  },
  {
    severity: "warning",
    file_path: "src/a.ts",
    line_number: null,
    title: "No tests",
    description: "Nothing covers the new branch.",
    agent_type: "openai",
  },
];
const findingLine = ({ agent_type: _, ...f }: AgentFinding) => JSON.stringify(f);
const ANSWER = `${FINDINGS.map(findingLine).join("\n")}\n{"summary": "Two problems"}\n`;

type Ctx = Partial<AgentContext>;
async function run(
  script: OpenAiScript | OpenAiScript[],
  options: Partial<OpenAiAgentOptions> = {},
  req: Partial<AgentRequest> = {},
  ctx: Ctx = {},
) {
  const fake = await startFakeOpenAi(script);
  const events: AgentEvent[] = [];
  try {
    const agent = createOpenAiAgent({
      baseUrl: `${fake.url}/`,
      token: "sk-test",
      model: "m",
      maxInputBytes: 64 * 1024,
      idleTimeoutMs: 2_000,
      ...options,
    });
    await agent.review({ ...request, ...req }, {
      signal: new AbortController().signal,
      emit: (e) => events.push(e),
      fetch,
      log: () => {},
      ...ctx,
    });
    return { events, fake };
  } finally {
    await fake.close();
  }
}

function only<T extends AgentEvent["type"]>(events: AgentEvent[], type: T) {
  return events.filter((e) => e.type === type) as Extract<AgentEvent, { type: T }>[];
}

/** The one event that ended the session, which must be an error. */
function errorOf(events: AgentEvent[]) {
  assert.equal(only(events, "done").length, 0);
  const errors = only(events, "error");
  assert.equal(errors.length, 1);
  assert.equal(events.at(-1), errors[0]);
  return errors[0];
}

/** A fetch that counts the response body's reads, to prove how the bytes arrived. */
function countingFetch(counter: { reads: number }): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    const body = response.body?.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          counter.reads++;
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(body, { status: response.status, headers: response.headers });
  };
}

Deno.test("findings arriving one byte per network read are assembled; request is complete", async () => {
  const counter = { reads: 0 };
  const { events, fake } = await run(
    () => completionStream(ANSWER, { deltaChars: 3, writeBytes: 1, model: "m-0613" }),
    {},
    {},
    { fetch: countingFetch(counter) },
  );
  assert.ok(counter.reads > 5000, `${counter.reads} reads`);
  assert.deepEqual(only(events, "finding").map((e) => e.finding), FINDINGS);
  assert.deepEqual(only(events, "summary"), [{ type: "summary", text: "Two problems" }]);
  assert.deepEqual(only(events, "usage"), [
    { type: "usage", model: "m-0613", tokensIn: 100, tokensOut: 20 },
  ]);
  assert.deepEqual(events[0], { type: "status", message: "reviewing part 1 of 1: src/a.ts" });
  assert.deepEqual(events.at(-1), { type: "done" });
  assert.equal(only(events, "done").length, 1);
  assert.equal(only(events, "skipped").length, 0);

  const [sent] = fake.requests;
  assert.equal(fake.requests.length, 1);
  assert.equal(sent.headers.get("authorization"), "Bearer sk-test");
  assert.equal(sent.headers.get("accept"), "text/event-stream");
  assert.equal(sent.headers.get("content-type"), "application/json");
  assert.equal(sent.body.model, "m");
  assert.equal(sent.body.stream, true);
  assert.deepEqual(sent.body.stream_options, { include_usage: true });
  assert.equal("temperature" in sent.body, false);
  assert.deepEqual(sent.body.messages.map((m) => m.role), ["system", "user"]);
  assert.match(sent.body.messages[1].content, /Pull request: Add login[^]*eval\(input\)/);
});

Deno.test("code fences and prose are tolerated, bad lines skipped, aliases accepted", async () => {
  const answer = [
    "Here is my review of the change:",
    "```json",
    '{"severity":"WARNING","file":"src/a.ts","line":"3","title":"t1","description":"d1"}',
    "```",
    '- {"severity":"info","path":"src/a.ts","title":"t2","description":"d2","suggestion":null}',
    '{"severity":"warning","file_path":"src/a.ts"',
    "{not json}",
    '{"severity":"error","file_path":"x","line_number":1,"title":"t","description":"d"}',
    '{"severity":"critical","title":"no file","description":"d"}',
    "That is all, thanks.",
    '```json\n{"summary": "Two findings."}\n```',
  ].join("\n");
  const { events, fake } = await run(
    () => completionStream(answer, { deltaChars: 1 }),
    { temperature: 0.1 },
    { authToken: "per-review", model: "other" },
  );
  assert.deepEqual(only(events, "finding").map((e) => e.finding), [
    {
      severity: "warning",
      file_path: "src/a.ts",
      line_number: 3,
      title: "t1",
      description: "d1",
      agent_type: "openai",
    },
    {
      severity: "info",
      file_path: "src/a.ts",
      line_number: null,
      title: "t2",
      description: "d2",
      agent_type: "openai",
    },
  ]);
  assert.deepEqual(only(events, "skipped").map((e) => e.reason), [
    "line has an unterminated JSON object",
    only(events, "skipped")[1].reason,
    'finding does not validate: severity: Invalid option: expected one of "critical"|"warning"|"info"',
    "finding does not validate: file_path: Invalid input: expected string, received undefined",
  ]);
  assert.match(only(events, "skipped")[1].reason, /^line is not valid JSON/);
  assert.deepEqual(only(events, "summary"), [{ type: "summary", text: "Two findings." }]);
  assert.deepEqual(events.at(-1), { type: "done" });
  const [sent] = fake.requests;
  assert.equal(sent.headers.get("authorization"), "Bearer per-review");
  assert.equal(sent.body.model, "other");
  assert.equal(sent.body.temperature, 0.1);
});

Deno.test("without a summary line the summary counts the findings; no token, no header", async () => {
  const answer = FINDINGS.map(findingLine).join("\n"); // no final newline: the last line counts
  const { events, fake } = await run(() => completionStream(answer, { usage: null }), {
    token: undefined,
  });
  assert.equal(only(events, "finding").length, 2);
  assert.deepEqual(only(events, "summary"), [
    { type: "summary", text: "2 findings (1 critical, 1 warning)." },
  ]);
  assert.deepEqual(only(events, "usage"), []);
  assert.equal(fake.requests[0].headers.get("authorization"), null);
});

Deno.test("429 with retry-after: 7 is a rate-limited retryable error after 7000 ms", async () => {
  const { events } = await run(() =>
    new Response('{"error":{"message":"Rate limit reached"}}', {
      status: 429,
      headers: { "retry-after": "7" },
    })
  );
  assert.deepEqual(events.filter((e) => e.type !== "status"), [{
    type: "error",
    message: 'openai answered 429: {"error":{"message":"Rate limit reached"}}',
    retryable: true,
    retryAfterMs: 7000,
    rateLimited: true,
  }]);
});

Deno.test("500 is retryable, 401 and 404 are final with the status and a bounded body", async () => {
  const server = errorOf((await run(() => new Response("upstream down", { status: 500 }))).events);
  assert.deepEqual(server, {
    type: "error",
    message: "openai answered 500: upstream down",
    retryable: true,
  });
  for (const status of [401, 404]) {
    const body = `{"error":{"message":"nope ${status}"}}${" ".repeat(200_000)}`;
    const error = errorOf((await run(() => new Response(body, { status }))).events);
    assert.equal(error.retryable, false);
    assert.ok(error.message.startsWith(`openai answered ${status}: {"error":{"message":"nope`));
    assert.ok(error.message.length < 400, `${error.message.length}`);
  }
});

Deno.test("a stream cut before [DONE] is retryable; complete lines already counted", async () => {
  const { events } = await run(() => completionStream(ANSWER + '{"severity":', { done: false }));
  assert.equal(only(events, "finding").length, 2);
  assert.equal(only(events, "usage").length, 1, "tokens spent are reported");
  assert.deepEqual(errorOf(events), {
    type: "error",
    message: "openai stream ended without [DONE]",
    retryable: true,
  });
});

Deno.test("an error chunk in the stream ends the session with its message", async () => {
  const error = JSON.stringify({ error: { message: "model overloaded", type: "server_error" } });
  const { events } = await run(() => completionStream("", { extraData: [error] }));
  assert.deepEqual(errorOf(events), {
    type: "error",
    message: "openai stream error: model overloaded",
    retryable: true,
  });
});

Deno.test("a non-JSON chunk is skipped; a chunk over maxEventBytes is final", async () => {
  const skipped = await run(() => completionStream(ANSWER, { extraData: ["oops"] }));
  assert.deepEqual(only(skipped.events, "skipped"), [
    { type: "skipped", reason: "stream chunk is not JSON" },
  ]);
  assert.deepEqual(skipped.events.at(-1), { type: "done" });
  const big = await run(() => completionStream("x".repeat(5000)), { maxEventBytes: 4096 });
  assert.deepEqual(errorOf(big.events), {
    type: "error",
    message: "openai stream event exceeds 4096 bytes",
    retryable: false,
  });
});

Deno.test("an empty diff is done without a request", async () => {
  const { events, fake } = await run(() => completionStream(ANSWER), {}, { diff: "", files: [] });
  assert.deepEqual(events, [
    { type: "summary", text: "The diff is empty: nothing to review." },
    { type: "done" },
  ]);
  assert.equal(fake.requests.length, 0);
});

Deno.test("idle stream, connection refused: retryable; JSON instead of SSE: final", async () => {
  let release = () => {};
  const hold = new Promise<void>((r) => release = r);
  const idle = await run(() => completionStream(ANSWER, { hold }), { idleTimeoutMs: 200 });
  release();
  assert.equal(only(idle.events, "finding").length, 2);
  assert.deepEqual(errorOf(idle.events), {
    type: "error",
    message: "openai idle timeout: no data for 200 ms",
    retryable: true,
  });

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = listener.addr.port;
  listener.close();
  const events: AgentEvent[] = [];
  await createOpenAiAgent({
    baseUrl: `http://127.0.0.1:${closedPort}/v1`,
    model: "m",
    maxInputBytes: 64 * 1024,
    idleTimeoutMs: 2_000,
  }).review(request, {
    signal: new AbortController().signal,
    emit: (e) => events.push(e),
    fetch,
    log: () => {},
  });
  const refused = errorOf(events);
  assert.equal(refused.retryable, true);
  assert.match(refused.message, /^openai connection failed/);

  const json = await run(() => completionStream("", { contentType: "application/json" }));
  assert.deepEqual(errorOf(json.events), {
    type: "error",
    message: "openai answered application/json instead of text/event-stream",
    retryable: false,
  });
});

Deno.test("no model anywhere is a final ReviewError naming AGENT_MODEL", async () => {
  const fake = await startFakeOpenAi();
  try {
    const agent = createOpenAiAgent({
      baseUrl: fake.url,
      maxInputBytes: 4096,
      idleTimeoutMs: 1000,
    });
    const ctx = { signal: new AbortController().signal, emit: () => {}, fetch, log: () => {} };
    await assert.rejects(agent.review(request, ctx), (e: unknown) => {
      assert.ok(e instanceof ReviewError);
      assert.equal(e.retryable, false);
      assert.match(e.message, /AGENT_MODEL is required/);
      return true;
    });
    assert.equal(fake.requests.length, 0);
  } finally {
    await fake.close();
  }
});

Deno.test("abort mid-stream rejects with the exact reason and the server sees the client leave", async () => {
  let release = () => {};
  const hold = new Promise<void>((r) => release = r);
  const fake = await startFakeOpenAi(() => completionStream(ANSWER, { hold, writeBytes: 16 }));
  const controller = new AbortController();
  const reason = { why: "superseded" };
  const events: AgentEvent[] = [];
  try {
    const agent = createOpenAiAgent({
      baseUrl: fake.url,
      model: "m",
      maxInputBytes: 64 * 1024,
      idleTimeoutMs: 5_000,
    });
    const emit = (e: AgentEvent) => {
      events.push(e);
      if (e.type === "finding") controller.abort(reason);
    };
    await assert.rejects(
      agent.review(request, { signal: controller.signal, emit, fetch, log: () => {} }),
      (e: unknown) => e === reason,
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("the server never saw the client leave")), 3000);
    });
    await Promise.race([fake.requests[0].left, timeout]).finally(() => clearTimeout(timer));
    assert.equal(fake.requests[0].clientLeft, true);
    assert.deepEqual(events.map((e) => e.type), ["status", "finding"]);
  } finally {
    release();
    await fake.close();
  }
});

Deno.test("a diff larger than maxInputBytes goes as several requests, each under the bound", async () => {
  const paths = ["a.ts", "b.ts", "c.ts", "d.ts", "e.ts", "f.ts"];
  const diff = paths.map((p) =>
    `diff --git a/${p} b/${p}\n@@ -0,0 +1,40 @@\n` +
    Array.from({ length: 40 }, (_, i) => `+const v${i} = "${p} ${"x".repeat(40)}";\n`).join("")
  ).join("");
  const maxInputBytes = 8 * 1024;
  // Each part answers one finding per file it was shown, and a summary.
  const script: OpenAiScript = (r) => {
    const shown = [...r.body.messages[1].content.matchAll(/^diff --git a\/\S+ b\/(\S+)$/gm)];
    return completionStream(
      shown.map(([, path]) =>
        JSON.stringify({
          severity: "info",
          file_path: path,
          line_number: 1,
          title: path,
          description: "d",
        }) +
        "\n"
      ).join("") + `{"summary": "part ${r.index + 1} fine"}\n`,
      { deltaChars: 5 },
    );
  };
  const { events, fake } = await run(script, { maxInputBytes }, { diff, files: paths });
  const n = fake.requests.length;
  assert.ok(n > 1, `${n} requests`);
  for (const r of fake.requests) {
    assert.ok(promptBytes(r.body.messages as never) <= maxInputBytes, "the prompt fits");
    // JSON escaping adds a little to the body: the newlines and quotes of the prompt.
    assert.ok(r.bodyBytes <= maxInputBytes * 1.1, `body of ${r.bodyBytes} bytes`);
  }
  const statuses = only(events, "status").map((e) => e.message);
  assert.equal(statuses.length, n);
  statuses.forEach((s, i) => assert.match(s, new RegExp(`^reviewing part ${i + 1} of ${n}: \\w`)));
  assert.deepEqual(only(events, "finding").map((e) => e.finding.file_path), paths);
  assert.equal(only(events, "usage").length, n);
  assert.deepEqual(only(events, "summary"), [{
    type: "summary",
    text: Array.from({ length: n }, (_, i) => `Part ${i + 1}: part ${i + 1} fine`).join("\n\n"),
  }]);
  assert.deepEqual(events.at(-1), { type: "done" });
});

Deno.test("line assembler: one character per delta, overlong lines skipped, last line kept", () => {
  const lines = createLineAssembler(10);
  const out: AssembledLine[] = [];
  for (const ch of "ab\nc\r\n0123456789ABC\nok\nend") out.push(...lines.push(ch));
  out.push(...lines.end());
  assert.deepEqual(out, [
    { text: "ab" },
    { text: "c\r" },
    { overlong: 13 },
    { text: "ok" },
    { text: "end" },
  ]);
  assert.deepEqual(lines.end(), []);
});

Deno.test("parseFindingLine and parseCompletionChunk read what servers send", () => {
  assert.deepEqual(parseFindingLine("```json"), { type: "ignored" });
  assert.deepEqual(parseFindingLine("   "), { type: "ignored" });
  assert.deepEqual(parseFindingLine("[1, 2]").type, "ignored");
  assert.deepEqual(parseFindingLine("{} {}").type, "skipped");
  assert.deepEqual(parseFindingLine('{"summary": "s"}\r'), { type: "summary", text: "s" });
  assert.deepEqual(parseCompletionChunk(" [DONE]"), { type: "done" });
  assert.deepEqual(
    parseCompletionChunk(chatChunk(null, { usage: { prompt_tokens: 5, completion_tokens: 2 } })),
    {
      type: "delta",
      content: "",
      model: "m",
      usage: { tokensIn: 5, tokensOut: 2 },
    },
  );
  assert.deepEqual(parseCompletionChunk(chatChunk({ content: "x" }, { finishReason: "length" })), {
    type: "delta",
    content: "x",
    model: "m",
    finishReason: "length",
  });
  assert.deepEqual(parseCompletionChunk("{oops").type, "invalid");
  const vllm =
    '{"error":{"object":"error","message":"too long","type":"BadRequestError","code":400}}';
  assert.deepEqual(parseCompletionChunk(vllm), {
    type: "error",
    message: "too long",
    retryable: false,
    rateLimited: false,
  });
  assert.deepEqual(parseCompletionChunk('{"error":{"message":"slow","type":"rate_limit_error"}}'), {
    type: "error",
    message: "slow",
    retryable: true,
    rateLimited: true,
  });
});

/** Model output of about `bytes` characters: prose, a fence, then finding lines. */
function modelOutput(bytes: number): { content: string; findings: number } {
  const line = `${findingLine(FINDINGS[0])}\n`;
  const findings = Math.ceil(bytes / line.length);
  return { content: `Sure, here you go:\n\`\`\`json\n${line.repeat(findings)}\`\`\`\n`, findings };
}

const mbps = (chars: number, ms: number) => (chars / 1e6 / (ms / 1000)).toFixed(1);

Deno.test("parse throughput: 5 MB of content in 4-character deltas through assembler and parser", () => {
  const { content, findings } = modelOutput(5e6);
  // Deltas of four characters, about one token each, as servers stream them.
  const deltas: string[] = [];
  for (let i = 0; i < content.length; i += 4) deltas.push(content.slice(i, i + 4));
  let found = 0;
  const onLine = (l: AssembledLine) => {
    if ("text" in l && parseFindingLine(l.text).type === "finding") found++;
  };
  const started = performance.now();
  const lines = createLineAssembler();
  for (const delta of deltas) lines.push(delta).forEach(onLine);
  lines.end().forEach(onLine);
  const ms = performance.now() - started;
  assert.equal(found, findings);
  console.log(
    `lines: ${(content.length / 1e6).toFixed(1)} MB in ${deltas.length} deltas, ${
      ms.toFixed(0)
    } ms:` +
      ` ${mbps(content.length, ms)} MB/s, ${(found / ms * 1000).toFixed(0)} findings/s`,
  );
  assert.ok(ms < 30_000, `${ms} ms`);
});

Deno.test("parse throughput: the SSE wire (eventsource-parser, chunk JSON, lines) end to end", () => {
  const { content, findings } = modelOutput(1e6);
  const frames: string[] = [];
  for (let i = 0; i < content.length; i += 4) {
    frames.push(`data: ${chatChunk({ content: content.slice(i, i + 4) })}\n\n`);
  }
  frames.push("data: [DONE]\n\n");
  const wire = frames.join("");
  let found = 0, done = false;
  const onLine = (l: AssembledLine) => {
    if ("text" in l && parseFindingLine(l.text).type === "finding") found++;
  };
  const started = performance.now();
  const lines = createLineAssembler();
  const parser = createParser({
    maxBufferSize: 320 * 1024,
    onEvent(event) {
      const chunk = parseCompletionChunk(event.data);
      if (chunk.type === "done") done = true;
      else if (chunk.type === "delta") lines.push(chunk.content).forEach(onLine);
    },
  });
  // 16 KiB network reads.
  for (let i = 0; i < wire.length; i += 16 * 1024) parser.feed(wire.slice(i, i + 16 * 1024));
  lines.end().forEach(onLine);
  const ms = performance.now() - started;
  assert.ok(done);
  assert.equal(found, findings);
  console.log(
    `wire: ${(wire.length / 1e6).toFixed(1)} MB of SSE in ${frames.length} chunks, ` +
      `${ms.toFixed(0)} ms: ${mbps(wire.length, ms)} MB/s of SSE, ` +
      `${(frames.length / ms / 1000).toFixed(2)} M chunks/s, ${
        mbps(content.length, ms)
      } MB/s of content`,
  );
  assert.ok(ms < 30_000, `${ms} ms`);
});
