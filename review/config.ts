/**
 * Service configuration, parsed with zod from an environment map. Only `main.ts` passes the real
 * environment in; everything else receives a {@link Config}.
 *
 * @module
 */
import { z } from "zod";

const optionalString = z.string().trim().min(1).optional().catch(undefined);
const url = (name: string) =>
  z.string().trim().url({ message: `${name} must be a URL like https://host` });
const int = (min: number) => z.coerce.number().int().min(min);

/** The environment schema; defaults are the documented ones (README, "Configuration"). */
export const ConfigSchema = z.object({
  PORT: int(0).max(65535).default(8000),
  KV_PATH: optionalString,
  GITHUB_WEBHOOK_SECRET: optionalString,
  GITHUB_TOKEN: optionalString,
  GITHUB_API_URL: url("GITHUB_API_URL").default("https://api.github.com"),
  AGENT_URL: url("AGENT_URL").optional(),
  AGENT_TOKEN: optionalString,
  AGENT_MODEL: optionalString,
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
  API_URL: url("API_URL").optional(),
  INTERNAL_API_SECRET: optionalString,
});

/** Parsed configuration. */
export type Config = z.infer<typeof ConfigSchema>;

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
  const needed = [
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_TOKEN",
    "AGENT_URL",
    "BACKEND_AUTH_TOKEN",
  ] as const;
  return needed.filter((name) => config[name] === undefined);
}
