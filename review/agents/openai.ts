/**
 * The `openai` agent kind: reviews a pull request through any OpenAI-compatible streaming
 * `POST {baseUrl}/chat/completions` (OpenAI, vLLM, Ollama, LM Studio). The model answers one
 * JSON finding per line; a diff too large for one request is reviewed in parts, one after the
 * other, and the parts' findings and summaries are merged.
 *
 * @module
 */
import { createParser } from "eventsource-parser";
import { retryAfterMs, ReviewError } from "../errors.ts";
import type { AgentContext, AgentEvent, AgentRequest, ReviewAgent } from "./agent.ts";
import { bodyPrefix, openStream } from "./http.ts";
import {
  type AssembledLine,
  createLineAssembler,
  MAX_LINE_CHARS,
  parseCompletionChunk,
  parseFindingLine,
} from "./openai_lines.ts";
import { buildMessages, type ChatMessage, chunkDiff } from "./openai_prompt.ts";

/**
 * Options of {@link createOpenAiAgent}.
 *
 * @example
 * ```ts
 * const options: OpenAiAgentOptions = {
 *   baseUrl: "https://api.openai.com/v1", token: "sk-…", model: "gpt-4o-mini",
 *   maxInputBytes: 200_000, idleTimeoutMs: 60_000,
 * };
 * ```
 */
export interface OpenAiAgentOptions {
  /** Up to and including the API version: `https://api.openai.com/v1`, `http://localhost:11434/v1`. */
  baseUrl: string;
  /** Bearer token when the request has none; no `Authorization` header without either. */
  token?: string;
  /** Model when the request names none (`AGENT_MODEL`). */
  model?: string;
  /** Bound on one request's messages (system + user) in UTF-8 bytes; larger diffs go in parts. */
  maxInputBytes: number;
  /** Longest silence (before the answer starts or within it) before a retryable failure. */
  idleTimeoutMs: number;
  /** Bound on one `data:` payload, 256 KiB by default; more fails the review for good. */
  maxEventBytes?: number;
  /** Sent only when set: some models (o1, o3) refuse anything but their default. */
  temperature?: number;
}

type ErrorEvent = Extract<AgentEvent, { type: "error" }>;

const encoder = new TextEncoder();

/**
 * The `openai` agent. `review` emits a `status` per part, findings as their lines complete,
 * `usage` per part, then one `summary` and `done`; a failed part ends the session with an
 * `error` event (`rateLimited` with `retryAfterMs` for a 429). No model in the request or the
 * options, or a `maxInputBytes` that leaves no room for diff text, throws a final `ReviewError`;
 * an abort rethrows `signal.reason`. An empty diff is `done` without a request.
 *
 * @example
 * ```ts
 * const agent = createOpenAiAgent({
 *   baseUrl: "http://localhost:11434/v1", model: "qwen2.5-coder", maxInputBytes: 100_000,
 *   idleTimeoutMs: 120_000,
 * });
 * await agent.review(request, { signal, emit, fetch, log: console.warn });
 * ```
 */
export function createOpenAiAgent(options: OpenAiAgentOptions): ReviewAgent {
  return { kind: "openai", review: (request, context) => review(options, request, context) };
}

async function review(options: OpenAiAgentOptions, request: AgentRequest, ctx: AgentContext) {
  const { signal, emit } = ctx;
  if (signal.aborted) throw signal.reason;
  const model = request.model ?? options.model;
  if (!model) {
    throw new ReviewError("AGENT_MODEL is required for the openai agent (or a model per review)", {
      retryable: false,
      reason: "agent_error",
    });
  }
  const chunks = chunkDiff(request, request.diff, options.maxInputBytes);
  const counts = { critical: 0, warning: 0, info: 0 };
  const summaries: string[] = [];
  for (const [i, chunk] of chunks.entries()) {
    const part = `part ${i + 1} of ${chunks.length}`;
    const shown = chunk.files.slice(0, 10).join(", ");
    const more = chunk.files.length > 10 ? `, and ${chunk.files.length - 10} more` : "";
    emit({ type: "status", message: `reviewing ${part}: ${shown || "(no file header)"}${more}` });
    let summary: string | undefined;
    const onLine = (line: AssembledLine) => {
      if ("overlong" in line) {
        emit({ type: "skipped", reason: `line of ${line.overlong} characters exceeds the bound` });
        return;
      }
      const result = parseFindingLine(line.text);
      if (result.type === "finding") {
        counts[result.finding.severity]++;
        emit({ type: "finding", finding: result.finding });
      } else if (result.type === "summary") summary = result.text;
      else if (result.type === "skipped") emit(result);
    };
    const messages = buildMessages(request, chunk, i + 1, chunks.length, options.maxInputBytes);
    const error = await streamPart(options, ctx, model, request.authToken, messages, onLine);
    if (error) {
      emit(error);
      return;
    }
    if (summary) summaries.push(chunks.length > 1 ? `Part ${i + 1}: ${summary}` : summary);
  }
  emit({ type: "summary", text: combineSummaries(summaries, counts, chunks.length) });
  emit({ type: "done" });
}

/** The parts' summaries joined; without any, what was found. */
function combineSummaries(summaries: string[], counts: Record<string, number>, parts: number) {
  if (summaries.length) return summaries.join("\n\n").slice(0, 20_000);
  if (parts === 0) return "The diff is empty: nothing to review.";
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const found = total
    ? `${total} finding${total === 1 ? "" : "s"} (${
      Object.entries(counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ")
    })`
    : "No findings";
  return `${found}${parts > 1 ? ` in ${parts} parts` : ""}.`;
}

/**
 * One chat completion, streamed. Resolves with the error event that ends the review, or
 * `undefined` once `[DONE]` arrived; throws `signal.reason` when aborted.
 */
async function streamPart(
  options: OpenAiAgentOptions,
  ctx: AgentContext,
  model: string,
  authToken: string | undefined,
  messages: ChatMessage[],
  onLine: (line: AssembledLine) => void,
): Promise<ErrorEvent | undefined> {
  const { signal, emit } = ctx;
  const maxEventBytes = options.maxEventBytes ?? 256 * 1024;
  const token = authToken ?? options.token;
  const lines = createLineAssembler(MAX_LINE_CHARS);
  let usage: { model: string; tokensIn: number; tokensOut: number } | undefined;
  let refused: ErrorEvent | undefined;
  try {
    await openStream({
      url: `${options.baseUrl.replace(/\/+$/, "")}/chat/completions`,
      init: {
        method: "POST",
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          accept: "text/event-stream",
          "content-type": "application/json",
        },
        body: JSON.stringify({
          model,
          stream: true,
          stream_options: { include_usage: true },
          messages,
          ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
        }),
      },
      ctx,
      idleTimeoutMs: options.idleTimeoutMs,
      label: "openai",
      async onResponse(response) {
        if (response.ok) return;
        refused = await httpFailure(response);
        return "stop";
      },
      createParser(fail) {
        let done = false;
        let failed = false;
        const stop = (message: string, retryable: boolean, rateLimited?: boolean) => {
          failed = true;
          fail(new ReviewError(message, { retryable, reason: "agent_error", rateLimited }));
        };
        const parser = createParser({
          // Bounds the parser's own buffering too: an endless line never reaches onEvent.
          maxBufferSize: maxEventBytes + 64 * 1024,
          onError(error) {
            if (error.type === "max-buffer-size-exceeded" && !failed) {
              stop(`openai stream event exceeds ${maxEventBytes} bytes`, false);
            }
          },
          onEvent(event) {
            // The rest of a read after an abort is not reported: the caller has moved on.
            if (done || failed || signal.aborted) return;
            // Characters first: encoding every small chunk to count its bytes would cost throughput.
            if (
              event.data.length * 3 > maxEventBytes &&
              encoder.encode(event.data).byteLength > maxEventBytes
            ) {
              stop(`openai stream event exceeds ${maxEventBytes} bytes`, false);
              return;
            }
            const chunk = parseCompletionChunk(event.data);
            if (chunk.type === "done") done = true;
            else if (chunk.type === "invalid") emit({ type: "skipped", reason: chunk.reason });
            else if (chunk.type === "error") {
              stop(`openai stream error: ${chunk.message}`, chunk.retryable, chunk.rateLimited);
            } else {
              // Servers that report usage on every chunk report running totals: keep the last.
              if (chunk.usage) usage = { model: chunk.model ?? model, ...chunk.usage };
              for (const line of chunk.content ? lines.push(chunk.content) : []) {
                if (!failed && !signal.aborted) onLine(line);
              }
              if (chunk.finishReason && chunk.finishReason !== "stop") {
                ctx.log("openai answer ended early", { finishReason: chunk.finishReason, model });
              }
            }
          },
        });
        return { feed: (text) => parser.feed(text), finished: () => done };
      },
      onEnd(finished) {
        if (!finished) {
          throw new ReviewError("openai stream ended without [DONE]", {
            retryable: true,
            reason: "agent_error",
          });
        }
        for (const line of lines.end()) onLine(line);
      },
    });
    return refused;
  } catch (error) {
    if (error instanceof ReviewError && !signal.aborted) return errorEvent(error);
    throw error;
  } finally {
    // Tokens spent count even when the part failed after the server reported them.
    if (usage && !signal.aborted) emit({ type: "usage", ...usage });
  }
}

/** The error event that reports a failed part. */
function errorEvent(error: ReviewError): ErrorEvent {
  return {
    type: "error",
    message: error.message,
    retryable: error.retryable,
    ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    ...(error.rateLimited ? { rateLimited: true } : {}),
  };
}

/** A non-2xx answer: 429 is a rate limit, 408 and 5xx retryable, other statuses final. */
async function httpFailure(response: Response): Promise<ErrorEvent> {
  const message = `openai answered ${response.status}: ${await bodyPrefix(response, 300)}`;
  const after = retryAfterMs(response.headers.get("retry-after"), Date.now());
  const wait = after === undefined ? {} : { retryAfterMs: after };
  if (response.status === 429) {
    return { type: "error", message, retryable: true, ...wait, rateLimited: true };
  }
  const retryable = response.status >= 500 || response.status === 408;
  return { type: "error", message, retryable, ...(retryable ? wait : {}) };
}
