/**
 * Runs one session of any {@link ReviewAgent} the same way: a total time bound, findings bounded
 * in count and bytes, summary and usage collected, the events forwarded for progress, and the
 * end classed (`done`, an `error` event, a thrown error, an abort).
 *
 * @module
 */
import type { AgentFinding } from "./agent_events.ts";
import type { AgentEvent, AgentRequest, AgentUsage, ReviewAgent } from "./agents/agent.ts";
import type { Usage } from "../kv/records.ts";
import { truncateForKv } from "../kv/size.ts";
import { ReviewError } from "./errors.ts";

/** Bounds of usage totals: a hostile or broken agent cannot make them huge or non-finite. */
const MAX_MODEL_BYTES = 200;
const MAX_TOKENS = Number.MAX_SAFE_INTEGER;
const MAX_COST = 1e9;

/**
 * Options of {@link runAgent}.
 *
 * @example
 * ```ts
 * const options: RunAgentOptions = { signal, fetch, totalTimeoutMs: 1_200_000 };
 * ```
 */
export interface RunAgentOptions {
  /** Cancel, supersede, shutdown, lost lease: the session stops and `signal.reason` is thrown. */
  signal: AbortSignal;
  fetch: typeof fetch;
  /** Longest whole session before a final failure with reason `timeout`. */
  totalTimeoutMs: number;
  /** Findings kept, 2000 by default; further ones are counted in `droppedFindings`. */
  maxFindings?: number;
  /** Bytes of finding data kept, 4 MiB by default. */
  maxFindingsBytes?: number;
  /** Every event the agent emits, after bounding (progress, event log); must not throw. */
  onEvent?: (event: AgentEvent) => void;
  /** Saves progress now (the agent's `checkpoint`); must not throw. */
  checkpoint?: () => Promise<void>;
  log?: (message: string, context: Record<string, unknown>) => void;
}

/**
 * What a finished session produced.
 *
 * @example
 * ```ts
 * const { findings, summary, usage } = await runAgent(agent, request, options);
 * ```
 */
export interface AgentSessionResult {
  /** In arrival order. */
  findings: AgentFinding[];
  /** Text of the last `summary` event. */
  summary?: string;
  /** The agent's session id, if it reported one. */
  sessionId?: string;
  /** Usage of this session, summed. */
  usage?: AgentUsage;
  /** Output that did not validate. */
  skippedEvents: number;
  /** Findings beyond the bounds. */
  droppedFindings: number;
}

/**
 * Adds usage increments.
 *
 * @example
 * ```ts
 * addUsage({ tokensIn: 1 }, { tokensIn: 2, model: "m" }); // { model: "m", tokensIn: 3, … }
 * ```
 */
export function addUsage(total: AgentUsage | undefined, more: AgentUsage): Usage {
  // Whatever an agent reports, totals stay finite, bounded numbers and the model name short.
  const finite = (n: number | undefined, cap: number) =>
    typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.min(n, cap) : 0;
  const sum = (a: number | undefined, b: number | undefined, cap: number) =>
    Math.min(cap, finite(a, cap) + finite(b, cap));
  const model = total?.model ?? more.model;
  return {
    model: model === undefined ? undefined : truncateForKv(model, MAX_MODEL_BYTES),
    tokensIn: sum(total?.tokensIn, more.tokensIn, MAX_TOKENS),
    tokensOut: sum(total?.tokensOut, more.tokensOut, MAX_TOKENS),
    cost: sum(total?.cost, more.cost, MAX_COST),
  };
}

/**
 * Runs one agent session to its end. Resolves after `done`; throws a {@link ReviewError} after an
 * `error` event, a failure or the total timeout, and `signal.reason` when aborted.
 *
 * @example
 * ```ts
 * const result = await runAgent(createLocalAgent(), request, {
 *   signal: AbortSignal.timeout(60_000), fetch, totalTimeoutMs: 60_000,
 * });
 * ```
 */
export async function runAgent(
  agent: ReviewAgent,
  request: AgentRequest,
  options: RunAgentOptions,
): Promise<AgentSessionResult> {
  const { signal, maxFindings = 2000 } = options;
  const maxFindingsBytes = options.maxFindingsBytes ?? 4 * 1024 * 1024;
  const log = options.log ?? ((m, c) => console.warn(m, c));
  signal.throwIfAborted();
  const controller = new AbortController();
  const forward = () => controller.abort(signal.reason);
  signal.addEventListener("abort", forward, { once: true });
  const timeout = new ReviewError(`agent session exceeded ${options.totalTimeoutMs} ms`, {
    retryable: false,
    reason: "timeout",
  });
  const timer = setTimeout(() => controller.abort(timeout), options.totalTimeoutMs);

  const result: AgentSessionResult = { findings: [], skippedEvents: 0, droppedFindings: 0 };
  let findingsBytes = 0;
  let end: Extract<AgentEvent, { type: "done" | "error" }> | undefined;
  const forwardEvent = (event: AgentEvent) => {
    try {
      options.onEvent?.(event);
    } catch (error) {
      log("agent event listener threw", { error: String(error) });
    }
  };
  const emit = (event: AgentEvent) => {
    // Nothing counts after the session's end or an abort: a late event must not change a result.
    if (end || controller.signal.aborted) return;
    switch (event.type) {
      case "session":
        result.sessionId ??= event.sessionId;
        break;
      case "finding": {
        const bytes = JSON.stringify(event.finding).length;
        if (result.findings.length >= maxFindings || findingsBytes + bytes > maxFindingsBytes) {
          result.droppedFindings++;
          return;
        }
        result.findings.push(event.finding);
        findingsBytes += bytes;
        break;
      }
      case "summary":
        result.summary = event.text;
        break;
      case "usage":
        result.usage = addUsage(result.usage, event);
        break;
      case "skipped":
        result.skippedEvents++;
        log("skipped agent output that does not validate", { kind: agent.kind, why: event.reason });
        break;
      case "done":
      case "error":
        end = event;
        break;
    }
    forwardEvent(event);
  };

  try {
    await agent.review(request, {
      signal: controller.signal,
      emit,
      fetch: options.fetch,
      log,
      checkpoint: () => options.checkpoint?.() ?? Promise.resolve(),
    });
  } catch (error) {
    if (controller.signal.aborted) throw controller.signal.reason;
    if (error instanceof ReviewError) throw error;
    throw new ReviewError(`${agent.kind} agent failed: ${(error as Error)?.message ?? error}`, {
      retryable: true,
      reason: "agent_error",
      cause: error,
    });
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", forward);
  }
  if (controller.signal.aborted) throw controller.signal.reason;
  if (end?.type === "error") {
    throw new ReviewError(end.message, {
      retryable: end.retryable,
      reason: "agent_error",
      retryAfterMs: end.retryAfterMs,
      rateLimited: end.rateLimited,
    });
  }
  if (!end) {
    throw new ReviewError(`${agent.kind} agent ended without done`, {
      retryable: true,
      reason: "agent_error",
    });
  }
  return result;
}
