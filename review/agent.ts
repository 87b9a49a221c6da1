/**
 * The agent session client: one `POST {AGENT_URL}/sessions` answered by an SSE stream, parsed with
 * `eventsource-parser`, every event validated with zod, every wait bounded.
 *
 * @module
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { z } from "zod";
import {
  AgentErrorEventSchema,
  type AgentFinding,
  AgentFindingSchema,
  type AgentSessionRequest,
  AgentStatusSchema,
  AgentSummarySchema,
} from "./agent_events.ts";
import { retryAfterMs, ReviewError } from "./errors.ts";

/**
 * Options of {@link runAgentSession}.
 *
 * @example
 * ```ts
 * const options: AgentSessionOptions = {
 *   agentUrl: "http://localhost:9000", idleTimeoutMs: 60_000, totalTimeoutMs: 1_200_000,
 * };
 * ```
 */
export interface AgentSessionOptions {
  /** Base URL; the session is `POST {agentUrl}/sessions`. */
  agentUrl: string;
  /** Bearer token; no `Authorization` header without it. */
  token?: string;
  /** Injected for tests; `globalThis.fetch` by default. */
  fetch?: typeof fetch;
  /** Cancel, supersede or shutdown: the stream is aborted and `signal.reason` rethrown as-is. */
  signal?: AbortSignal;
  /** Longest silence (heartbeat comments count as bytes) before a retryable failure. */
  idleTimeoutMs: number;
  /** Longest whole session before a final failure with reason `timeout`. */
  totalTimeoutMs: number;
  /** Bound on one event's data, 256 KiB by default; more fails the attempt for good. */
  maxEventBytes?: number;
  /** Findings kept, 2000 by default; further ones are counted in `droppedFindings`. */
  maxFindings?: number;
  /** Bytes of finding data kept, 4 MiB by default; findings past it are counted as dropped. */
  maxFindingsBytes?: number;
  /** Progress callback; whatever it throws is logged, never fails the stream. */
  onEvent?: (event: { type: "status"; message: string }) => void;
  /** Where skipped events are reported; `console.warn` by default. */
  log?: (message: string, context: Record<string, unknown>) => void;
}

/**
 * What a finished session produced.
 *
 * @example
 * ```ts
 * const { findings, summary, skippedEvents } = await runAgentSession(request, options);
 * ```
 */
export interface AgentSessionResult {
  /** In arrival order. */
  findings: AgentFinding[];
  /** Text of the last `summary` event. */
  summary?: string;
  /** The agent's `X-Session-Id` response header. */
  sessionId?: string;
  /** Known events whose data was not JSON or failed its schema. */
  skippedEvents: number;
  /** Findings beyond `maxFindings`. */
  droppedFindings: number;
}

const retryable = (message: string, cause?: unknown) =>
  new ReviewError(message, { retryable: true, reason: "agent_error", cause });
const final = (message: string, cause?: unknown) =>
  new ReviewError(message, { retryable: false, reason: "agent_error", cause });
const encoder = new TextEncoder();

/** The start of an error body for the message, without buffering a huge one. */
async function bodyPrefix(response: Response, chars: number): Promise<string> {
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

/**
 * Runs one agent session to its `done` event. Every failure is a {@link ReviewError}, except an
 * abort through `options.signal`, which rethrows the signal's reason.
 *
 * @example
 * ```ts
 * const result = await runAgentSession(request, {
 *   agentUrl: "http://localhost:9000", token: "t", idleTimeoutMs: 60_000, totalTimeoutMs: 1_200_000,
 * });
 * result.findings.length;
 * ```
 */
export async function runAgentSession(
  request: AgentSessionRequest,
  options: AgentSessionOptions,
): Promise<AgentSessionResult> {
  const { signal, maxEventBytes = 256 * 1024, maxFindings = 2000 } = options;
  const maxFindingsBytes = options.maxFindingsBytes ?? 4 * 1024 * 1024;
  let findingsBytes = 0;
  const log = options.log ?? ((m, c) => console.warn(m, c));
  const doFetch = options.fetch ?? globalThis.fetch;
  if (signal?.aborted) throw signal.reason;
  const controller = new AbortController();
  // Our own aborts carry the error to throw; an external abort carries the caller's reason.
  let failure: unknown;
  const abortWith = (error: unknown) => {
    failure ??= error;
    controller.abort(error);
  };
  const onExternal = () => abortWith(signal!.reason);
  signal?.addEventListener("abort", onExternal, { once: true });
  const timeout = new ReviewError(`agent session exceeded ${options.totalTimeoutMs} ms`, {
    retryable: false,
    reason: "timeout",
  });
  const total = setTimeout(() => abortWith(timeout), options.totalTimeoutMs);
  let idle: ReturnType<typeof setTimeout> | undefined;
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      abortWith(retryable(`agent idle timeout: no data for ${options.idleTimeoutMs} ms`));
    }, options.idleTimeoutMs);
  };

  const result: AgentSessionResult = { findings: [], skippedEvents: 0, droppedFindings: 0 };
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    touch();
    let response: Response;
    try {
      response = await doFetch(`${options.agentUrl.replace(/\/+$/, "")}/sessions`, {
        method: "POST",
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          accept: "text/event-stream",
          "content-type": "application/json",
          "idempotency-key": `${request.reviewId}:${request.attempt}`,
        },
        body: JSON.stringify(request),
        signal: controller.signal,
      });
    } catch (error) {
      throw failure ?? retryable(`agent connection failed: ${(error as Error).message}`, error);
    }
    if (!response.ok) {
      const message = `agent answered ${response.status}: ${await bodyPrefix(response, 200)}`;
      if (response.status >= 500 || response.status === 429) {
        throw new ReviewError(message, {
          retryable: true,
          reason: "agent_error",
          retryAfterMs: retryAfterMs(response.headers.get("retry-after"), Date.now()),
        });
      }
      throw final(message);
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.toLowerCase().includes("text/event-stream") || !response.body) {
      await response.body?.cancel().catch(() => {});
      throw final(`agent answered ${type || "no content type"} instead of text/event-stream`);
    }
    result.sessionId = response.headers.get("x-session-id") ?? undefined;

    let done = false;
    let streamError: ReviewError | undefined;
    const parse = <S extends z.ZodType>(schema: S, event: EventSourceMessage) => {
      let data: unknown;
      try {
        data = JSON.parse(event.data);
      } catch { /* not JSON: the schema rejects undefined */ }
      const parsed = schema.safeParse(data);
      if (parsed.success) return parsed.data as z.infer<S>;
      result.skippedEvents++;
      log("skipped an agent event that does not validate", {
        event: event.event,
        error: parsed.error.issues[0]?.message,
      });
      return undefined;
    };
    const parser = createParser({
      // Bounds the parser's own buffering too: an endless line never reaches onEvent.
      maxBufferSize: maxEventBytes + 64 * 1024,
      onError(error) {
        if (error.type === "max-buffer-size-exceeded") {
          streamError ??= final(`agent event exceeds ${maxEventBytes} bytes`, error);
        }
      },
      onEvent(event) {
        if (done || streamError) return;
        if (encoder.encode(event.data).byteLength > maxEventBytes) {
          streamError = final(
            `agent event ${event.event ?? "message"} exceeds ${maxEventBytes} bytes`,
          );
          return;
        }
        switch (event.event) {
          case "status": {
            const data = parse(AgentStatusSchema, event);
            try {
              if (data) options.onEvent?.({ type: "status", message: data.message });
            } catch (error) {
              log("agent onEvent callback threw", { error: String(error) });
            }
            break;
          }
          case "finding": {
            const data = parse(AgentFindingSchema, event);
            if (!data) break;
            // Bounded in count and in bytes: what a session holds in memory stays small.
            const bytes = event.data.length;
            if (result.findings.length < maxFindings && findingsBytes + bytes <= maxFindingsBytes) {
              result.findings.push(data);
              findingsBytes += bytes;
            } else result.droppedFindings++;
            break;
          }
          case "summary": {
            const data = parse(AgentSummarySchema, event);
            if (data) result.summary = data.text;
            break;
          }
          case "error": {
            const data = parse(AgentErrorEventSchema, event);
            if (data) streamError = data.retryable ? retryable(data.message) : final(data.message);
            break;
          }
          case "done":
            done = true;
            break;
          default:
            // Unknown event types are ignored: newer agents may send more.
        }
      },
    });
    reader = response.body.getReader();
    const decoder = new TextDecoder();
    while (!done && !streamError) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw failure ?? retryable(`agent stream broke: ${(error as Error).message}`, error);
      }
      if (chunk.done) {
        parser.feed(decoder.decode());
        break;
      }
      touch();
      parser.feed(decoder.decode(chunk.value, { stream: true }));
    }
    if (failure) throw failure;
    if (streamError) throw streamError;
    if (!done) throw retryable("agent stream ended without done");
    return result;
  } catch (error) {
    throw failure ?? error;
  } finally {
    clearTimeout(total);
    clearTimeout(idle);
    signal?.removeEventListener("abort", onExternal);
    await reader?.cancel().catch(() => {});
  }
}
