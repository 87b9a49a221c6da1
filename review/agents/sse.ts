/**
 * The `sse` kind: our own protocol (README, "Agent protocol"). One `POST {AGENT_URL}/sessions`
 * answered by an SSE stream of `status`, `finding`, `summary`, `error` and `done` events, parsed
 * with `eventsource-parser`, every event validated with zod, every wait bounded.
 *
 * @module
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { z } from "zod";
import {
  AgentErrorEventSchema,
  AgentFindingSchema,
  type AgentSessionRequest,
  AgentStatusSchema,
  AgentSummarySchema,
} from "../agent_events.ts";
import { retryAfterMs, ReviewError } from "../errors.ts";
import type { AgentEvent, ReviewAgent } from "./agent.ts";
import { bodyPrefix, openStream } from "./http.ts";

/**
 * Options of {@link createSseAgent}.
 *
 * @example
 * ```ts
 * const options: SseAgentOptions = { baseUrl: "http://localhost:9000", idleTimeoutMs: 60_000 };
 * ```
 */
export interface SseAgentOptions {
  /** The session is `POST {baseUrl}/sessions`. */
  baseUrl: string;
  /** Bearer token; a review's own `authToken` wins. No `Authorization` header without either. */
  token?: string;
  /** Longest silence (heartbeat comments count as bytes) before a retryable failure. */
  idleTimeoutMs: number;
  /** Bound on one event's data, 256 KiB by default; more fails the attempt for good. */
  maxEventBytes?: number;
}

const encoder = new TextEncoder();
const final = (message: string, cause?: unknown) =>
  new ReviewError(message, { retryable: false, reason: "agent_error", cause });

/**
 * Creates the `sse` agent.
 *
 * @example
 * ```ts
 * const agent = createSseAgent({ baseUrl: "http://localhost:9000", idleTimeoutMs: 60_000 });
 * await agent.review(request, { signal, emit, fetch, log });
 * ```
 */
export function createSseAgent(options: SseAgentOptions): ReviewAgent {
  const maxEventBytes = options.maxEventBytes ?? 256 * 1024;
  return {
    kind: "sse",
    async review(request, ctx) {
      const body: AgentSessionRequest = {
        reviewId: request.reviewId,
        attempt: request.attempt,
        repo: request.repo,
        pullNumber: request.pullNumber,
        headSha: request.headSha,
        baseSha: request.baseSha,
        title: request.title,
        model: request.model,
        prompt: request.instructions,
        diff: request.diff,
        files: request.files,
        sessionInput: request.sessionInput,
      };
      const token = request.authToken ?? options.token;
      await openStream({
        url: `${options.baseUrl.replace(/\/+$/, "")}/sessions`,
        init: {
          method: "POST",
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            accept: "text/event-stream",
            "content-type": "application/json",
            "idempotency-key": `${request.reviewId}:${request.attempt}`,
          },
          body: JSON.stringify(body),
        },
        ctx,
        idleTimeoutMs: options.idleTimeoutMs,
        async onResponse(response) {
          if (response.ok) {
            const id = response.headers.get("x-session-id");
            if (id) ctx.emit({ type: "session", sessionId: id });
            return;
          }
          const message = `agent answered ${response.status}: ${await bodyPrefix(response, 200)}`;
          const retryable = response.status >= 500 || response.status === 429;
          ctx.emit({
            type: "error",
            message,
            retryable,
            retryAfterMs: retryAfterMs(response.headers.get("retry-after"), Date.now()),
            rateLimited: response.status === 429,
          });
          return "stop";
        },
        createParser(fail) {
          let finished = false;
          const parse = <S extends z.ZodType>(schema: S, event: EventSourceMessage) => {
            let data: unknown;
            try {
              data = JSON.parse(event.data);
            } catch { /* not JSON: the schema rejects undefined */ }
            const parsed = schema.safeParse(data);
            if (parsed.success) return parsed.data as z.infer<S>;
            ctx.emit({
              type: "skipped",
              reason: `${event.event ?? "message"}: ${parsed.error.issues[0]?.message}`,
            });
            return undefined;
          };
          const end = (event: AgentEvent) => {
            finished = true;
            ctx.emit(event);
          };
          const parser = createParser({
            // Bounds the parser's own buffering too: an endless line never reaches onEvent.
            maxBufferSize: maxEventBytes + 64 * 1024,
            onError(error) {
              if (error.type === "max-buffer-size-exceeded") {
                fail(final(`agent event exceeds ${maxEventBytes} bytes`, error));
              }
            },
            onEvent(event) {
              if (finished) return;
              if (encoder.encode(event.data).byteLength > maxEventBytes) {
                fail(
                  final(`agent event ${event.event ?? "message"} exceeds ${maxEventBytes} bytes`),
                );
                return;
              }
              switch (event.event) {
                case "status": {
                  const data = parse(AgentStatusSchema, event);
                  if (data) ctx.emit({ type: "status", message: data.message });
                  break;
                }
                case "finding": {
                  const data = parse(AgentFindingSchema, event);
                  if (data) ctx.emit({ type: "finding", finding: data });
                  break;
                }
                case "summary": {
                  const data = parse(AgentSummarySchema, event);
                  if (data) ctx.emit({ type: "summary", text: data.text });
                  break;
                }
                case "error": {
                  const data = parse(AgentErrorEventSchema, event);
                  if (data) {
                    end({
                      type: "error",
                      message: data.message,
                      retryable: data.retryable === true,
                    });
                  }
                  break;
                }
                case "done":
                  end({ type: "done" });
                  break;
                default:
                  // Unknown event types are ignored: newer agents may send more.
              }
            },
          });
          return {
            feed: (text: string) => parser.feed(text),
            finished: () => finished,
          };
        },
        onEnd(finished) {
          if (!finished) {
            throw new ReviewError("agent stream ended without done", {
              retryable: true,
              reason: "agent_error",
            });
          }
        },
      });
    },
  };
}
