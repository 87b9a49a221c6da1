/**
 * A fake OpenAI-compatible server on loopback (`POST /v1/chat/completions`): records every
 * request, answers each with a script, streams real-format completion chunks, and notices when a
 * client leaves mid-stream.
 *
 * @module
 */
import { setImmediate } from "node:timers";

/**
 * The body a chat completion request carries (the fields the fake reads).
 *
 * @example
 * ```ts
 * const body: ChatRequestBody = { model: "m", stream: true, messages: [] };
 * ```
 */
export interface ChatRequestBody {
  model?: string;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  messages: { role: string; content: string }[];
  temperature?: number;
  [field: string]: unknown;
}

/**
 * One request the fake received.
 *
 * @example
 * ```ts
 * fake.requests[0].headers.get("authorization"); // "Bearer sk-test"
 * ```
 */
export interface FakeOpenAiRequest {
  /** 0-based count of requests seen before this one. */
  index: number;
  path: string;
  headers: Headers;
  body: ChatRequestBody;
  /** Size of the raw request body. */
  bodyBytes: number;
  /** Set once the client went away before the response body ended. */
  clientLeft: boolean;
  /** Resolves when the client goes away before the response body ended. */
  left: Promise<void>;
}

/**
 * Answers one request.
 *
 * @example
 * ```ts
 * const script: OpenAiScript = (r) =>
 *   r.index === 0 ? new Response("slow down", { status: 429 }) : completionStream("{}");
 * ```
 */
export type OpenAiScript = (request: FakeOpenAiRequest) => Response | Promise<Response>;

/**
 * A running fake.
 *
 * @example
 * ```ts
 * const fake = await startFakeOpenAi(() => completionStream("ok"));
 * try {
 *   // point the code under test at fake.url
 * } finally {
 *   await fake.close();
 * }
 * ```
 */
export interface FakeOpenAi {
  /** The base URL, `http://127.0.0.1:PORT/v1`. */
  url: string;
  /** Every request, in arrival order. */
  requests: FakeOpenAiRequest[];
  /** Scripts for requests from now on: request i gets `scripts[i]`, later ones the last. */
  setScript(script: OpenAiScript | OpenAiScript[]): void;
  /** Ends open streams and resolves once the server is shut down. */
  close(): Promise<void>;
}

/**
 * Options of {@link completionStream}.
 *
 * @example
 * ```ts
 * const options: CompletionStreamOptions = { deltaChars: 1, writeBytes: 1, done: false };
 * ```
 */
export interface CompletionStreamOptions {
  /** `model` of every chunk; `"m"` by default. */
  model?: string;
  /** Split each content string into deltas of this many characters (default: one delta each). */
  deltaChars?: number;
  /** Split the written bytes into writes of this size (1: every byte its own write). */
  writeBytes?: number;
  /** The last chunk's usage (`choices: []`); `null` sends none. */
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  /** End with `data: [DONE]` (default true); false cuts the stream after the content. */
  done?: boolean;
  /** Raw `data:` payloads written after the content (an `{"error": …}` chunk, say). */
  extraData?: string[];
  /** Waited for after the content, before usage and `[DONE]` (the client may leave meanwhile). */
  hold?: Promise<void>;
  /** `content-type`; `text/event-stream` by default. */
  contentType?: string;
}

const encoder = new TextEncoder();

/**
 * One completion chunk's JSON, as OpenAI writes it.
 *
 * @example
 * ```ts
 * chatChunk({ content: "hi" }); // '{"id":"chatcmpl-1",…,"choices":[{"index":0,"delta":{"content":"hi"},…}]}'
 * ```
 */
export function chatChunk(
  delta: { role?: string; content?: string } | null,
  options: { model?: string; finishReason?: string | null; usage?: unknown } = {},
): string {
  return JSON.stringify({
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    created: 1,
    model: options.model ?? "m",
    choices: delta
      ? [{ index: 0, delta, logprobs: null, finish_reason: options.finishReason ?? null }]
      : [],
    ...(options.usage ? { usage: options.usage } : {}),
  });
}

/**
 * A streamed completion of `content`: a role chunk, the content deltas, a `stop` chunk, the usage
 * chunk and `[DONE]`, each `data: …\n\n`. Writing stops when the client leaves.
 *
 * @example
 * ```ts
 * completionStream('{"summary": "ok"}\n', { deltaChars: 1, writeBytes: 1 });
 * ```
 */
export function completionStream(
  content: string | string[],
  options: CompletionStreamOptions = {},
): Response {
  const model = options.model ?? "m";
  const deltas = (Array.isArray(content) ? content : [content]).flatMap((text) => {
    const size = options.deltaChars ?? Math.max(1, text.length);
    const out: string[] = [];
    // By code point, as a server splits tokens: never half a surrogate pair.
    const chars = [...text];
    for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(""));
    return out;
  });
  const frame = (data: string) => `data: ${data}\n\n`;
  const head = [
    frame(chatChunk({ role: "assistant", content: "" }, { model })),
    ...deltas.map((d) => frame(chatChunk({ content: d }, { model }))),
    ...(options.extraData ?? []).map(frame),
  ].join("");
  const usage = options.usage === undefined
    ? { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 }
    : options.usage;
  const tail = [
    frame(chatChunk({}, { model, finishReason: "stop" })),
    usage ? frame(chatChunk(null, { model, usage })) : "",
    options.done === false ? "" : frame("[DONE]"),
  ].join("");
  const segments: (Uint8Array | Promise<void>)[] = [encoder.encode(head)];
  if (options.hold) segments.push(options.hold);
  segments.push(encoder.encode(tail));
  return new Response(writer(segments, options.writeBytes), {
    headers: { "content-type": options.contentType ?? "text/event-stream" },
  });
}

/** A body writing the byte segments in writes of `writeBytes`, waiting for promise segments. */
function writer(
  segments: (Uint8Array | Promise<void>)[],
  writeBytes = Infinity,
): ReadableStream<Uint8Array> {
  let cancelled = false;
  let wake = () => {};
  const gone = new Promise<void>((resolve) => wake = resolve);
  let segment = 0;
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    // One write per pull: the reader's pace decides, and each write is its own chunk.
    async pull(controller) {
      while (segment < segments.length) {
        const current = segments[segment];
        if (current instanceof Promise) {
          await Promise.race([current, gone]);
          if (cancelled) return;
          segment++;
          continue;
        }
        if (offset >= current.length) {
          segment++;
          offset = 0;
          continue;
        }
        // A macrotask between small writes lets each reach the client as its own read.
        if (writeBytes < 64 && offset > 0) await new Promise((r) => setImmediate(r));
        if (cancelled) return;
        const end = Math.min(current.length, offset + writeBytes);
        controller.enqueue(current.slice(offset, end));
        offset = end;
        return;
      }
      controller.close();
    },
    cancel() {
      cancelled = true;
      wake();
    },
  });
}

/**
 * Starts the fake on a free loopback port. Request i gets `scripts[i]` (the last script for any
 * later request); the default answers every request with an empty completion.
 *
 * @example
 * ```ts
 * const fake = await startFakeOpenAi([
 *   () => new Response("busy", { status: 503 }),
 *   () => completionStream('{"summary": "fine"}\n'),
 * ]);
 * ```
 */
export function startFakeOpenAi(
  script: OpenAiScript | OpenAiScript[] = () => completionStream(""),
): Promise<FakeOpenAi> {
  let scripts = Array.isArray(script) ? script : [script];
  let offset = 0;
  const requests: FakeOpenAiRequest[] = [];
  const live = new Set<() => void>();

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method !== "POST" || path !== "/v1/chat/completions") {
      return new Response(JSON.stringify({ error: { message: "not found" } }), { status: 404 });
    }
    const raw = new Uint8Array(await req.arrayBuffer());
    let body: ChatRequestBody;
    try {
      body = JSON.parse(new TextDecoder().decode(raw));
    } catch {
      return new Response(JSON.stringify({ error: { message: "body is not JSON" } }), {
        status: 400,
      });
    }
    let markLeft = () => {};
    const request: FakeOpenAiRequest = {
      index: requests.length,
      path,
      headers: req.headers,
      body,
      bodyBytes: raw.byteLength,
      clientLeft: false,
      left: new Promise<void>((resolve) => markLeft = resolve),
    };
    requests.push(request);
    const i = request.index - offset;
    const response = await scripts[Math.min(i, scripts.length - 1)](request);
    if (!response.body) return response;
    const reader = response.body.getReader();
    let ended = false;
    const end = () => {
      ended = true;
      live.delete(stop);
    };
    const stop = () => reader.cancel().catch(() => {});
    live.add(stop);
    const watched = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            end();
            controller.close();
          } else controller.enqueue(value);
        } catch (error) {
          end();
          controller.error(error);
        }
      },
      async cancel(reason) {
        if (!ended) {
          request.clientLeft = true;
          markLeft();
        }
        end();
        await reader.cancel(reason).catch(() => {});
      },
    });
    return new Response(watched, { status: response.status, headers: response.headers });
  });

  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}/v1`,
    requests,
    setScript(next) {
      scripts = Array.isArray(next) ? next : [next];
      offset = requests.length;
    },
    async close() {
      for (const stop of live) stop();
      await server.shutdown();
    },
  });
}
