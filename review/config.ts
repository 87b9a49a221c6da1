/**
 * Service configuration, parsed with zod from an environment map. Only `main.ts` passes the real
 * environment in; everything else receives a {@link Config}.
 *
 * @module
 */
import { z } from "zod";
import { AGENT_KINDS, type AgentKind } from "./agents/agent.ts";
import { callbackSecret } from "./callback_token.ts";
import { normalizePrivateKey } from "./github_app.ts";

const optionalString = z.string().trim().min(1).optional().catch(undefined);
const url = (name: string) =>
  z.string().trim().url({ message: `${name} must be a URL like https://host` });
/** `localhost:8080` parses as a URL with the scheme `localhost:`: only http(s) URLs pass. */
const httpUrl = (name: string) =>
  url(name).refine((v) => /^https?:\/\/[^/]/i.test(v), {
    message: `${name} must start with http:// or https:// (like https://host:port)`,
  });
const int = (min: number) => z.coerce.number().int().min(min);

/** The environment schema; defaults are the documented ones (README, "Configuration"). */
const EnvSchema = z.object({
  PORT: int(0).max(65535).default(8000),
  /** Least severe log lines printed: `debug`, `info`, `warn` or `error`. */
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  KV_PATH: optionalString,
  GITHUB_WEBHOOK_SECRET: optionalString,
  GITHUB_TOKEN: optionalString,
  /** The GitHub App's id; with `GITHUB_APP_PRIVATE_KEY`, reviews use installation tokens. */
  GITHUB_APP_ID: z.coerce.number().int().positive().optional(),
  /** The App's private key (PEM, PKCS#1 or PKCS#8; the one-line `\n`-escaped form works). */
  GITHUB_APP_PRIVATE_KEY: optionalString,
  /** Retries of a GitHub read that failed with a 5xx or no answer, inside one request. */
  GITHUB_RETRIES: int(0).max(10).default(2),
  /** Base of those retries' delay: retry n waits n² × this. */
  GITHUB_RETRY_BASE_MS: int(0).max(60_000).default(1_000),
  /** Least time between two GitHub writes of one installation (0: as fast as GitHub allows). */
  GITHUB_WRITE_INTERVAL_MS: int(0).max(60_000).default(0),
  /** Severity from which inline comments are posted, when the repository does not say. */
  MIN_SEVERITY: z.enum(["critical", "high", "medium", "low", "info"]).default("info"),
  GITHUB_API_URL: httpUrl("GITHUB_API_URL").default("https://api.github.com"),
  AGENT_URL: httpUrl("AGENT_URL").optional(),
  /** `sse`, `openai`, `kilo` or `local`; `sse` when `AGENT_URL` is set, else `local`. */
  AGENT_KIND: z.enum(AGENT_KINDS).optional(),
  AGENT_TOKEN: optionalString,
  AGENT_MODEL: optionalString,
  /** Largest prompt the `openai` kind sends in one request; bigger diffs go in several parts. */
  AGENT_MAX_INPUT_BYTES: int(4096).default(200_000),
  /** Agent sessions started per minute, across every instance (a token bucket in KV). */
  AGENT_RATE_PER_MINUTE: int(1).optional(),
  /** Agent sessions open at once across every owner and instance. */
  MAX_CONCURRENT_TOTAL: int(1).max(500).optional(),
  /** How long a review waits for a free agent session before it asks again. */
  AGENT_LIMIT_WAIT_MS: int(10).default(2_000),
  /** An agent 429 defers the review this many times at most; later ones count as attempts. */
  MAX_RATE_LIMIT_DEFERRALS: int(0).default(50),
  /** The service's public base URL (the `kilo` agent's callback goes to it). */
  PUBLIC_URL: httpUrl("PUBLIC_URL").optional(),
  /** Key of the per-attempt callback tokens; `BACKEND_AUTH_TOKEN` when unset. */
  CALLBACK_SECRET: optionalString,
  /** How long a `kilo` session whose stream ended waits for its callback. */
  AGENT_CALLBACK_WAIT_MS: int(100).default(120_000),
  /** Least time between two progress writes of one running review. */
  PROGRESS_WRITE_MS: int(10).default(2_000),
  BACKEND_AUTH_TOKEN: optionalString,
  MAX_CONCURRENT_PER_OWNER: int(1).max(40).default(4),
  REVIEW_TIMEOUT_MS: int(1000).default(1_200_000),
  AGENT_IDLE_TIMEOUT_MS: int(100).default(60_000),
  MAX_ATTEMPTS: int(1).max(20).default(3),
  RETRY_BASE_DELAY_MS: int(0).default(5_000),
  LEASE_MS: int(500).default(30_000),
  /** How often a running attempt re-reads its review (cancel, supersede, lost lease). */
  LEASE_CHECK_MS: int(20).default(1_000),
  /** How far instances' clocks may disagree; leases and claims count as expired this much later. */
  CLOCK_SKEW_MS: int(0).default(5_000),
  /** Finished reviews, their findings and index entries are removed after this many days. */
  RETENTION_DAYS: z.coerce.number().min(0.0001).default(30),
  /** Longest wait before a retry, whatever `retry-after` asks for. */
  MAX_RETRY_DELAY_MS: int(0).default(3_600_000),
  SWEEP_INTERVAL_MS: int(100).default(15_000),
  MAX_HAND_BACKS: int(0).default(10),
  MAX_DIFF_BYTES: int(1024).default(2 * 1024 * 1024),
  QUEUE_TRANSPORT: z.enum(["auto", "kv-queue", "kv-table"]).default("auto"),
  QUEUE_POLL_MS: int(10).default(1_000),
  FAST_PATH: z.enum(["true", "false"]).default("true").transform((v) => v === "true"),
  API_URL: httpUrl("API_URL").optional(),
  INTERNAL_API_SECRET: optionalString,
});

/** The environment schema, with `AGENT_KIND` resolved to its default. */
export const ConfigSchema = EnvSchema.transform((env) => ({
  ...env,
  AGENT_KIND: (env.AGENT_KIND ?? (env.AGENT_URL ? "sse" : "local")) as AgentKind,
}));

/** Parsed configuration. */
export type Config = z.infer<typeof ConfigSchema>;

/** What each agent kind and the GitHub App settings cannot work without, as start-up errors. */
function agentProblems(config: Config): string[] {
  const kind = config.AGENT_KIND;
  const problems: string[] = [];
  if (config.GITHUB_APP_ID !== undefined && !config.GITHUB_APP_PRIVATE_KEY) {
    problems.push(
      "GITHUB_APP_PRIVATE_KEY: GITHUB_APP_ID is set, so the App's private key is needed",
    );
  }
  if (config.GITHUB_APP_PRIVATE_KEY && config.GITHUB_APP_ID === undefined) {
    problems.push("GITHUB_APP_ID: GITHUB_APP_PRIVATE_KEY is set, so the App's id is needed");
  }
  if (config.GITHUB_APP_PRIVATE_KEY) {
    try {
      normalizePrivateKey(config.GITHUB_APP_PRIVATE_KEY);
    } catch (error) {
      problems.push(`GITHUB_APP_PRIVATE_KEY: ${(error as Error).message}`);
    }
  }
  if (kind !== "local" && !config.AGENT_URL) {
    problems.push(`AGENT_URL: AGENT_KIND=${kind} needs the agent's base URL`);
  }
  if (kind === "kilo") {
    if (!config.PUBLIC_URL) {
      problems.push("PUBLIC_URL: AGENT_KIND=kilo needs the URL the agent calls back");
    }
    if (!callbackSecret(config)) {
      problems.push("CALLBACK_SECRET: AGENT_KIND=kilo needs a key for callback tokens");
    }
  }
  return problems;
}

/** A configuration value that could not be parsed; the message names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Parses configuration from an environment map. Empty strings count as unset.
 *
 * @example
 * ```ts
 * const config = parseConfig({ PORT: "8080", MAX_CONCURRENT_PER_OWNER: "2" });
 * config.PORT; // 8080
 * ```
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ""),
  );
  const result = ConfigSchema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  const problems = agentProblems(result.data);
  if (problems.length) {
    throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  return result.data;
}

/**
 * Settings a working service still needs, for the start-up log.
 *
 * @example
 * ```ts
 * missingSettings(parseConfig({})); // ["GITHUB_WEBHOOK_SECRET", …]
 * ```
 */
export function missingSettings(config: Config): string[] {
  const missing: string[] = [];
  if (!config.GITHUB_WEBHOOK_SECRET) missing.push("GITHUB_WEBHOOK_SECRET");
  if (!config.GITHUB_TOKEN && config.GITHUB_APP_ID === undefined) {
    missing.push("GITHUB_TOKEN (or GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY)");
  }
  if (!config.BACKEND_AUTH_TOKEN) missing.push("BACKEND_AUTH_TOKEN");
  // The openai kind needs a model, from the environment or from each API request.
  if (config.AGENT_KIND === "openai" && !config.AGENT_MODEL) missing.push("AGENT_MODEL");
  return missing;
}
