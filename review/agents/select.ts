/**
 * Builds the agent `AGENT_KIND` names from the configuration.
 *
 * @module
 */
import type { Config } from "../config.ts";
import type { ReviewAgent } from "./agent.ts";
import { createKiloAgent } from "./kilo.ts";
import { createLocalAgent } from "./local.ts";
import { createOpenAiAgent } from "./openai.ts";
import { createSseAgent } from "./sse.ts";

/**
 * The configured agent (`parseConfig` has already checked what each kind needs).
 *
 * @example
 * ```ts
 * const agent = createAgent(parseConfig({})); // the local reviewer
 * ```
 */
export function createAgent(config: Config): ReviewAgent {
  const baseUrl = config.AGENT_URL ?? "";
  switch (config.AGENT_KIND) {
    case "local":
      return createLocalAgent();
    case "sse":
      return createSseAgent({
        baseUrl,
        token: config.AGENT_TOKEN,
        idleTimeoutMs: config.AGENT_IDLE_TIMEOUT_MS,
      });
    case "openai":
      return createOpenAiAgent({
        baseUrl,
        token: config.AGENT_TOKEN,
        model: config.AGENT_MODEL,
        maxInputBytes: config.AGENT_MAX_INPUT_BYTES,
        idleTimeoutMs: config.AGENT_IDLE_TIMEOUT_MS,
      });
    case "kilo":
      return createKiloAgent({
        baseUrl,
        token: config.AGENT_TOKEN,
        githubToken: config.GITHUB_TOKEN,
        idleTimeoutMs: config.AGENT_IDLE_TIMEOUT_MS,
        callbackWaitMs: config.AGENT_CALLBACK_WAIT_MS,
      });
  }
}
