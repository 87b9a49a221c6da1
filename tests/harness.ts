/**
 * Integration harness: a real service on a loopback port over its own in-memory KV, a fake GitHub
 * and a fake SSE agent. Every test builds one and closes it.
 */
import { sign } from "@octokit/webhooks-methods";
import examples from "@octokit/webhooks-examples" with { type: "json" };
import { type Service, startService } from "../main.ts";
import type { ReviewRecord } from "../kv/records.ts";
import { type Config, parseConfig } from "../review/config.ts";
import type { ReviewAgent } from "../review/agents/agent.ts";
import type { Logger } from "../review/deps.ts";
import { type AgentScript, type FakeAgent, startFakeAgent } from "./fakes/agent.ts";
import { type FakeGitHub, startFakeGitHub } from "./fakes/github.ts";

export const WEBHOOK_SECRET = "test-webhook-secret";
export const BACKEND_TOKEN = "test-backend-token";
export const TRANSPORTS = ["kv-queue", "kv-table"] as const;
export type TransportChoice = typeof TRANSPORTS[number];

type Example = { name: string; examples: Record<string, unknown>[] };

/** A 40-character hex sha made from a number (distinct heads in tests). */
export const sha = (n: number): string => n.toString(16).padStart(40, "0");

/** A real `pull_request` example payload from `@octokit/webhooks-examples`. */
export function examplePayload(action: string): Record<string, unknown> {
  const group = (examples as unknown as Example[]).find((e) => e.name === "pull_request")!;
  const found = group.examples.find((e) => e.action === action);
  if (!found) throw new Error(`no pull_request example for ${action}`);
  return structuredClone(found);
}

/** Webhooks in a test are sent in order: each gets a later `updated_at` than the one before. */
let lastUpdatedAt = 0;

/**
 * An example payload adjusted to one owner, repository, pull request and head; `updatedAt`
 * defaults to now (strictly later than the previous payload's).
 */
export function pullRequestPayload(options: {
  action?: string;
  ownerId: number;
  ownerLogin?: string;
  ownerType?: "Organization" | "User";
  repo?: string;
  number: number;
  headSha: string;
  draft?: boolean;
  state?: string;
  updatedAt?: number;
}): Record<string, unknown> {
  const payload = examplePayload(options.action ?? "opened") as {
    number: number;
    pull_request: Record<string, unknown> & { head: { sha: string }; base: { sha: string } };
    repository: { full_name: string; name: string; owner: Record<string, unknown> };
  };
  const login = options.ownerLogin ?? `owner${options.ownerId}`;
  const name = options.repo ?? "service";
  payload.number = options.number;
  payload.pull_request.number = options.number;
  payload.pull_request.head.sha = options.headSha;
  payload.pull_request.base.sha = "b".repeat(40);
  payload.pull_request.draft = options.draft ?? false;
  payload.pull_request.state = options.state ?? "open";
  lastUpdatedAt = options.updatedAt ?? Math.max(Date.now(), lastUpdatedAt + 1);
  payload.pull_request.updated_at = new Date(lastUpdatedAt).toISOString();
  payload.repository.full_name = `${login}/${name}`;
  payload.repository.name = name;
  payload.repository.owner = {
    ...payload.repository.owner,
    id: options.ownerId,
    login,
    type: options.ownerType ?? "Organization",
  };
  return payload as unknown as Record<string, unknown>;
}

/** A running test service. */
export interface Harness {
  url: string;
  kv: Deno.Kv;
  github: FakeGitHub;
  agent: FakeAgent;
  service: Service;
  config: Config;
  logs: Array<{ level: string; message: string; context?: Record<string, unknown> }>;
  sendWebhook(
    event: string,
    payload: unknown,
    options?: { deliveryId?: string; secret?: string | null; rawBody?: string },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  api(
    method: string,
    path: string,
    body?: unknown,
    token?: string | null,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  review(id: string): Promise<ReviewRecord & { findings?: unknown[] }>;
  /** Sets the PR on the fake GitHub and sends its signed `opened` (or given action) webhook. */
  openPull(
    ownerId: number,
    number: number,
    headSha?: string,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  waitForStatus(
    id: string,
    statuses: string[],
    timeoutMs?: number,
  ): Promise<ReviewRecord & { findings?: unknown[] }>;
  close(): Promise<void>;
}

/** Polls `check` until it returns a value (not undefined) or the time runs out. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Options of {@link startHarness}. */
export interface HarnessOptions {
  transport?: TransportChoice;
  /** Wraps the KV handle the service uses (fault injection); the harness keeps the real one. */
  wrapKv?: (kv: Deno.Kv) => Deno.Kv;
  env?: Record<string, string>;
  script?: AgentScript;
  /** A review agent instead of the one the configuration names. */
  agent?: ReviewAgent;
  clock?: () => number;
}

/** Starts a harness; `env` overrides the test configuration. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const kv = await Deno.openKv(":memory:");
  const github = await startFakeGitHub();
  const agent = await startFakeAgent(options.script);
  // Listening first, so the service knows its own URL (PUBLIC_URL, for agent callbacks).
  let handler: (req: Request) => Response | Promise<Response> = () =>
    new Response("starting", { status: 503 });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => handler(req),
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  const config = parseConfig({
    PUBLIC_URL: url,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
    GITHUB_TOKEN: "test-github-token",
    GITHUB_API_URL: github.url,
    AGENT_URL: agent.url,
    AGENT_TOKEN: "test-agent-token",
    AGENT_MODEL: "test-model",
    BACKEND_AUTH_TOKEN: BACKEND_TOKEN,
    QUEUE_TRANSPORT: options.transport ?? "kv-queue",
    QUEUE_POLL_MS: "50",
    RETRY_BASE_DELAY_MS: "20",
    GITHUB_RETRY_BASE_MS: "10",
    AGENT_IDLE_TIMEOUT_MS: "2000",
    LEASE_MS: "3000",
    SWEEP_INTERVAL_MS: "60000",
    // Every dispatch goes through the transport under test, not the same-process fast path.
    FAST_PATH: "false",
    ...options.env,
  });
  const logs: Harness["logs"] = [];
  const log: Logger = (level, message, context) => logs.push({ level, message, context });
  const service = await startService({
    config,
    kv: options.wrapKv?.(kv) ?? kv,
    log,
    agent: options.agent,
    clock: options.clock,
  });
  handler = service.app.fetch;

  async function call(req: Request) {
    const res = await fetch(req);
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text);
    } catch {
      body = { text };
    }
    return { status: res.status, body };
  }

  const harness: Harness = {
    url,
    kv,
    github,
    agent,
    service,
    config,
    logs,
    async sendWebhook(event, payload, opts = {}) {
      const raw = opts.rawBody ?? JSON.stringify(payload);
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": opts.deliveryId ?? crypto.randomUUID(),
      };
      if (opts.secret !== null) {
        headers["x-hub-signature-256"] = await sign(opts.secret ?? WEBHOOK_SECRET, raw);
      }
      return call(new Request(`${url}/webhooks/github`, { method: "POST", headers, body: raw }));
    },
    api(method, path, body, token) {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (token !== null) headers.authorization = `Bearer ${token ?? BACKEND_TOKEN}`;
      return call(
        new Request(`${url}${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      );
    },
    async review(id) {
      const res = await harness.api("GET", `/reviews/${id}`);
      if (res.status !== 200) throw new Error(`GET /reviews/${id} answered ${res.status}`);
      return res.body as unknown as ReviewRecord;
    },
    openPull(ownerId, number, headSha = sha(number)) {
      github.setPull({ owner: `owner${ownerId}`, repo: "service", number, headSha });
      return harness.sendWebhook("pull_request", pullRequestPayload({ ownerId, number, headSha }));
    },
    waitForStatus(id, statuses, timeoutMs = 10_000) {
      return waitFor(`review ${id} to be ${statuses.join("|")}`, async () => {
        const r = await harness.review(id);
        return statuses.includes(r.status) ? r : undefined;
      }, timeoutMs);
    },
    async close() {
      await service.stop(2_000);
      await server.shutdown();
      kv.close();
      await service.listening;
      await agent.close();
      await github.close();
    },
  };
  return harness;
}

/** Declares one test per transport: the same assertions against each. */
export function transportSuite(name: string, fn: (transport: TransportChoice) => Promise<void>) {
  for (const transport of TRANSPORTS) Deno.test(`[${transport}] ${name}`, () => fn(transport));
}

/** Runs `fn` against a fresh harness on `transport` and always closes it. */
export async function withHarness(
  transport: TransportChoice,
  options: Omit<HarnessOptions, "transport">,
  fn: (h: Harness) => Promise<void>,
) {
  const h = await startHarness({ ...options, transport });
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}
