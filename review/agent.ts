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
import { ReviewError } from "./errors.ts";

/** Options of {@link runAgentSession}. */
export interface AgentSessionOptions {
  agentUrl: string;
  token?: string;
  fetch?: typeof fetch;
  /** Cancel, supersede or shutdown: the stream is aborted and `signal.reason` rethrown. */
  signal?: AbortSignal;
  idleTimeoutMs: number;
  totalTimeoutMs: number;
  maxEventBytes?: number;
  maxFindings?: number;
  log?: (message: string, context: Record<string, unknown>) => void;
}

/** What a finished session produced. */
export interface AgentSessionResult {
  findings: AgentFinding[];
  summary?: string;
  sessionId?: string;
  skippedEvents: number;
  droppedFindings: number;
}

const retryable = (message: string, cause?: unknown) =>
  new ReviewError(message, { retryable: true, reason: "agent_error", cause });
const final = (message: string, cause?: unknown) =>
  new ReviewError(message, { retryable: false, reason: "agent_error", cause });

/**
 * Runs one agent session to its `done` event.
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
  const doFetch = options.fetch ?? fetch;
  const log = options.log ?? ((m, c) => console.warn(m, c));
  const maxEventBytes = options.maxEventBytes ?? 256 * 1024;
  const maxFindings = options.maxFindings ?? 2000;
  const controller = new AbortController();
  // Our own aborts carry the error to throw; an external abort carries the caller's reason.
  let failure: unknown;
  const abortWith = (error: unknown) => {
    failure ??= error;
    controller.abort(error);
  };
  const onExternal = () => abortWith(options.signal!.reason);
  if (options.signal?.aborted) throw options.signal.reason;
  options.signal?.addEventListener("abort", onExternal, { once: true });
  const total = setTimeout(() => {
    abortWith(
      new ReviewError(`agent session exceeded ${options.totalTimeoutMs} ms`, {
        retryable: false,
        reason: "timeout",
      }),
    );
  }, options.totalTimeoutMs);
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
      const text = (await response.text().catch(() => "")).slice(0, 200);
      const message = `agent answered ${response.status}: ${text}`;
      throw response.status >= 500 || response.status === 429 ? retryable(message) : final(message);
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.includes("text/event-stream") || !response.body) {
      await response.body?.cancel();
      throw final(`agent answered ${type || "no content type"} instead of text/event-stream`);
    }
    result.sessionId = response.headers.get("x-session-id") ?? undefined;

    let done = false;
    let streamError: ReviewError | undefined;
    const parse = <S extends z.ZodType>(schema: S, event: EventSourceMessage) => {
      let data: unknown;
      try {
        data = JSON.parse(event.data);
      } catch {
        data = undefined;
      }
      const parsed = schema.safeParse(data);
      if (parsed.success) return parsed.data as z.infer<S>;
      result.skippedEvents++;
      log("skipped an agent event that does not validate", { event: event.event });
      return undefined;
    };
    const parser = createParser({
      onEvent(event) {
        if (done || streamError) return;
        if (event.data.length > maxEventBytes) {
          streamError = final(
            `agent event ${event.event ?? "message"} exceeds ${maxEventBytes} bytes`,
          );
          return;
        }
        switch (event.event) {
          case "status":
            // Progress text only: validated so a malformed one is counted, otherwise unused.
            parse(AgentStatusSchema, event);
            break;
          case "finding": {
            const data = parse(AgentFindingSchema, event);
            if (!data) break;
            if (result.findings.length < maxFindings) result.findings.push(data);
            else result.droppedFindings++;
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
    options.signal?.removeEventListener("abort", onExternal);
    await reader?.cancel().catch(() => {});
  }
}
