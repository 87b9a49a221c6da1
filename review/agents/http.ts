/**
 * Reading an agent's HTTP event stream with every wait bounded: the request and the stream stop
 * on the session's abort signal (whose reason is rethrown as-is), on an idle timeout, or when the
 * parser fails; error bodies are read only as far as a message needs.
 *
 * @module
 */
import { ReviewError } from "../errors.ts";
import type { AgentContext } from "./agent.ts";

/**
 * The start of a response body as text, without buffering a huge one.
 *
 * @example
 * ```ts
 * const message = `agent answered ${response.status}: ${await bodyPrefix(response, 200)}`;
 * ```
 */
export async function bodyPrefix(response: Response, chars: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < chars) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // A broken error body still leaves the status to report.
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text.slice(0, chars);
}

/** A stream parser: fed decoded text, says when the session's end has been seen. */
export interface StreamParser {
  feed(text: string): void;
  finished(): boolean;
}

/**
 * Options of {@link openStream}.
 *
 * @example
 * ```ts
 * await openStream({ url, init, ctx, idleTimeoutMs: 60_000, onResponse, createParser, onEnd });
 * ```
 */
export interface OpenStreamOptions {
  url: string;
  init: RequestInit;
  ctx: AgentContext;
  /** Longest silence before a retryable failure. */
  idleTimeoutMs: number;
  /** Who is talking, in failure messages: `agent` by default (`openai connection failed: …`). */
  label?: string;
  /** Called with the response before reading; `"stop"` ends the session without reading more. */
  onResponse(response: Response): Promise<"stop" | void> | "stop" | void;
  /** Builds the parser; `fail` stops the stream with that error. */
  createParser(fail: (error: ReviewError) => void): StreamParser;
  /** Called when the stream ended normally (`finished` says whether the end was seen). */
  onEnd(finished: boolean): void | Promise<void>;
}

const retryable = (message: string, cause?: unknown) =>
  new ReviewError(message, { retryable: true, reason: "agent_error", cause });

/**
 * Sends the request and reads its `text/event-stream` answer into a parser until the parser has
 * seen the end, the stream ends, or something fails.
 *
 * @example
 * ```ts
 * await openStream({
 *   url: "http://localhost:9000/sessions", init: { method: "POST", body: "{}" }, ctx,
 *   idleTimeoutMs: 60_000, onResponse: () => {}, createParser: () => parser, onEnd: () => {},
 * });
 * ```
 */
export async function openStream(options: OpenStreamOptions): Promise<void> {
  const { ctx } = options;
  const label = options.label ?? "agent";
  ctx.signal.throwIfAborted();
  const controller = new AbortController();
  // Our own aborts carry the error to throw; the session's abort carries its own reason.
  let failure: unknown;
  const abortWith = (error: unknown) => {
    failure ??= error;
    controller.abort(error);
  };
  const onExternal = () => abortWith(ctx.signal.reason);
  ctx.signal.addEventListener("abort", onExternal, { once: true });
  let idle: ReturnType<typeof setTimeout> | undefined;
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      abortWith(retryable(`${label} idle timeout: no data for ${options.idleTimeoutMs} ms`));
    }, options.idleTimeoutMs);
  };
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    touch();
    let response: Response;
    try {
      response = await ctx.fetch(options.url, { ...options.init, signal: controller.signal });
    } catch (error) {
      throw failure ?? retryable(`${label} connection failed: ${(error as Error).message}`, error);
    }
    const next = await options.onResponse(response);
    // An abort while the answer was read (an error body, say) wins over what it said.
    if (failure) throw failure;
    if (next === "stop") {
      await response.body?.cancel().catch(() => {});
      return;
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.toLowerCase().includes("text/event-stream") || !response.body) {
      await response.body?.cancel().catch(() => {});
      throw new ReviewError(
        `${label} answered ${type || "no content type"} instead of text/event-stream`,
        { retryable: false, reason: "agent_error" },
      );
    }
    const parser = options.createParser(abortWith);
    reader = response.body.getReader();
    const decoder = new TextDecoder();
    while (!parser.finished() && !failure) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw failure ?? retryable(`${label} stream broke: ${(error as Error).message}`, error);
      }
      if (chunk.done) {
        parser.feed(decoder.decode());
        break;
      }
      touch();
      parser.feed(decoder.decode(chunk.value, { stream: true }));
    }
    if (failure) throw failure;
    clearTimeout(idle);
    await options.onEnd(parser.finished());
  } catch (error) {
    throw failure ?? error;
  } finally {
    clearTimeout(idle);
    ctx.signal.removeEventListener("abort", onExternal);
    await reader?.cancel().catch(() => {});
  }
}
