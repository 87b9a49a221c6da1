/**
 * The `sse` agent run through the session runner with the options the agent tests vary (the
 * shape of the former single-protocol client, so the stream tests read as before).
 */
import type { AgentSessionRequest } from "../review/agent_events.ts";
import { type AgentSessionResult, runAgent } from "../review/agent_session.ts";
import { createSseAgent } from "../review/agents/sse.ts";

/** The `sse` agent run through the session runner, with the options these tests vary. */
export function runAgentSession(
  body: AgentSessionRequest,
  options: {
    agentUrl: string;
    token?: string;
    idleTimeoutMs: number;
    totalTimeoutMs: number;
    maxEventBytes?: number;
    maxFindings?: number;
    signal?: AbortSignal;
    fetch?: typeof fetch;
    onEvent?: (event: { type: "status"; message: string }) => void;
    log?: (message: string, context: Record<string, unknown>) => void;
  },
): Promise<AgentSessionResult> {
  const agent = createSseAgent({
    baseUrl: options.agentUrl,
    token: options.token,
    idleTimeoutMs: options.idleTimeoutMs,
    maxEventBytes: options.maxEventBytes,
  });
  const { prompt, ...rest } = body;
  return runAgent(agent, { ...rest, instructions: prompt }, {
    signal: options.signal ?? new AbortController().signal,
    fetch: options.fetch ?? fetch,
    totalTimeoutMs: options.totalTimeoutMs,
    maxFindings: options.maxFindings,
    log: options.log,
    onEvent: (event) => {
      if (event.type === "status") options.onEvent?.(event);
    },
  });
}
