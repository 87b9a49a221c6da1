/**
 * Entry point: wires configuration, KV, the queue transport, the worker, the HTTP app, the sweeper
 * and the cron job. `startService` is the same wiring for tests (no environment read there).
 *
 * @module
 */
import type { Changes } from "./kv/changes.ts";
import { countingKv, emptyKvOpCounts } from "./kv/op_counts.ts";
import { createSweeper, type Sweeper } from "./queue/sweeper.ts";
import { createWorker, type Worker } from "./queue/worker.ts";
import { dropVia, enqueueVia, type QueueTransport } from "./queue/port.ts";
import { selectTransport } from "./queue/select.ts";
import { type Config, ConfigError, missingSettings, parseConfig } from "./review/config.ts";
import type { ReviewAgent } from "./review/agents/agent.ts";
import { createAgent } from "./review/agents/select.ts";
import { consoleLogger, type Logger, type ReviewDeps } from "./review/deps.ts";
import { createEffects } from "./review/effects.ts";
import { createLiveFeed, type LiveFeed } from "./review/live_feed.ts";
import { createMetrics, type Metrics } from "./review/metrics.ts";
import { ownersOverview } from "./review/operations.ts";
import { withDeadline } from "./review/deadline.ts";
import { createGitHubClients, type GitHubCredentials } from "./review/github.ts";
import { createGitHubAppAuth } from "./review/github_app.ts";
import { createStatusNotifier, type StatusNotifier } from "./review/status_callback.ts";
import { createApp } from "./routes/app.ts";
import { kvOpenProblem, listenProblem, nextSteps } from "./review/startup.ts";

/** What {@link startService} needs; everything but `config` and `kv` has a default. */
export interface ServiceOptions {
  config: Config;
  kv: Deno.Kv;
  clock?: () => number;
  fetch?: typeof fetch;
  log?: Logger;
  instance?: string;
  /** Run the periodic sweeper in-process (default true). */
  sweeper?: boolean;
  /** Extra listeners of every commit's changes (tests; later the live feed and metrics). */
  listeners?: Array<(changes: Changes) => void>;
  /** The review agent; the one `AGENT_KIND` names by default. */
  agent?: ReviewAgent;
}

/** A running service (without its HTTP listener). */
export interface Service {
  app: ReturnType<typeof createApp>;
  deps: ReviewDeps;
  worker: Worker;
  sweeper: Sweeper;
  callbacks: StatusNotifier;
  transport: QueueTransport;
  transportWhy: string;
  /** What live dashboards listen to. */
  feed: LiveFeed;
  /** This instance's Prometheus metrics (`GET /metrics`). */
  metrics: Metrics;
  /** Hands back running attempts, stops the listener and sweeper. Does not close `kv`. */
  stop(handBackMs?: number): Promise<void>;
  /** Resolves when the queue listener has ended (for `kv-queue`: after `kv.close()`). */
  listening: Promise<void>;
}

/**
 * Builds and starts the service on a KV handle: queue listener and sweeper included.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const service = await startService({ config: parseConfig({}), kv });
 * Deno.serve(service.app.fetch);
 * ```
 */
export async function startService(options: ServiceOptions): Promise<Service> {
  const { config } = options;
  // Every KV operation of the service is counted (`/metrics`, `deno task bench`).
  const kvOps = emptyKvOpCounts();
  const kv = countingKv(options.kv, kvOps);
  const clock = options.clock ?? Date.now;
  const log = options.log ?? consoleLogger();
  // Deno.hostname() needs --allow-sys; the pid and a random suffix name the instance well enough.
  const instance = options.instance ?? `instance-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const { transport, why } = await selectTransport(kv, config.QUEUE_TRANSPORT, {
    pollMs: config.QUEUE_POLL_MS,
    clock,
  });
  const callbacks = createStatusNotifier({
    apiUrl: config.API_URL,
    secret: config.INTERNAL_API_SECRET,
    fetch: options.fetch,
    log: (m, c) => log("warn", m, c),
  });
  const feed = createLiveFeed({ kv, instance, clock, log });
  // The per-owner gauges read the overview at scrape time, once deps exist.
  const metrics = createMetrics({
    kvOps,
    ownersOverview: () =>
      late.deps
        ? withDeadline(5_000, () => ownersOverview(late.deps!, 1_000))
        : Promise.resolve([]),
  });
  // The worker needs deps and the effects call the worker: tie the knot through a late binding.
  const late: { worker?: Worker; deps?: ReviewDeps } = {};
  const deps: ReviewDeps = {
    kv,
    config,
    clock,
    github: createGitHubClients({
      baseUrl: config.GITHUB_API_URL,
      credentials: githubCredentials(config, kv, clock, options.fetch),
      fetch: options.fetch,
      retries: config.GITHUB_RETRIES,
      retryBaseMs: config.GITHUB_RETRY_BASE_MS,
      writeIntervalMs: config.GITHUB_WRITE_INTERVAL_MS,
    }),
    agent: options.agent ?? createAgent(config),
    agentFetch: options.fetch,
    reportUsage: (reviewId, usage) => callbacks.usage(reviewId, usage),
    enqueue: enqueueVia(transport),
    drop: dropVia(transport),
    apply: createEffects({
      abort: (requests) => late.worker?.abort(requests),
      kick: (dispatched) => late.worker?.kick(dispatched),
      notify: (review) => callbacks.notify(review),
      listeners: [feed.observe, metrics.observe, ...(options.listeners ?? [])],
      log,
    }),
    log,
  };
  late.deps = deps;
  const w = createWorker(deps, { instance, transport });
  late.worker = w;
  const sweeper = createSweeper(deps, { instance });
  const listening = transport.listen((message) => w.handle(message)).catch((error) => {
    log("error", "queue listener stopped", { error: String(error) });
  });
  let sweeping: Promise<unknown> | undefined;
  const sweep = () => {
    sweeping = sweeper.sweep().catch((error) =>
      log("warn", "sweep failed", { error: String(error) })
    );
  };
  const sweepTimer = options.sweeper === false
    ? undefined
    : setInterval(sweep, config.SWEEP_INTERVAL_MS);
  // Reviews left queued by a previous run are picked up at once, not after the first interval.
  if (options.sweeper !== false) sweep();
  return {
    app: createApp(deps, {
      feed,
      metrics,
      onWebhookAnswer: (o) => metrics.webhookAnswered(o.status, o.event),
    }),
    feed,
    metrics,
    deps,
    worker: w,
    sweeper,
    callbacks,
    transport,
    transportWhy: why,
    listening,
    async stop(handBackMs = 4_000) {
      clearInterval(sweepTimer);
      await feed.close();
      // Stop taking messages first, so the hand-back messages are left for other instances.
      await transport.close();
      await w.shutdown(handBackMs);
      await sweeping;
      // Status changes of the hand-backs get a moment to reach the backend.
      await callbacks.idle(Math.min(handBackMs, 1_000));
      callbacks.close();
      if (transport.name === "kv-table") await listening;
    },
  };
}

/** A GitHub App's installation tokens when one is configured, else the token, else nothing. */
function githubCredentials(
  config: Config,
  kv: Deno.Kv,
  clock: () => number,
  fetchFn?: typeof fetch,
): GitHubCredentials {
  if (config.GITHUB_APP_ID !== undefined && config.GITHUB_APP_PRIVATE_KEY) {
    const app = createGitHubAppAuth({
      kv,
      appId: config.GITHUB_APP_ID,
      privateKey: config.GITHUB_APP_PRIVATE_KEY,
      baseUrl: config.GITHUB_API_URL,
      clock,
      fetch: fetchFn,
    });
    return { kind: "app", app };
  }
  return config.GITHUB_TOKEN ? { kind: "token", token: config.GITHUB_TOKEN } : { kind: "none" };
}

/** A URL as logs may show it: scheme, host and path only. */
function shownUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

async function main() {
  let config: Config;
  try {
    config = parseConfig(Deno.env.toObject());
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : error);
    Deno.exit(2);
  }
  const log = consoleLogger(config.LOG_LEVEL);
  const dev = Deno.args.includes("--dev");
  // `deno task dev` keeps its KV file under .data/ unless KV_PATH says otherwise.
  if (dev && !config.KV_PATH) {
    await Deno.mkdir(".data", { recursive: true });
    config = { ...config, KV_PATH: ".data/kv.sqlite3" };
  }
  // Listen before anything starts, so a port in use stops start-up before any review is taken;
  // requests wait for the service (503) for the moment it takes to start.
  let handler: (req: Request) => Response | Promise<Response> = () =>
    Response.json({ error: "starting" }, { status: 503, headers: { "retry-after": "1" } });
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { port: config.PORT, hostname: "0.0.0.0", onListen() {} },
      (req) => handler(req),
    );
  } catch (error) {
    console.error(listenProblem(config.PORT, error));
    Deno.exit(2);
  }
  let kv: Deno.Kv;
  try {
    kv = await Deno.openKv(config.KV_PATH);
  } catch (error) {
    console.error(kvOpenProblem(config.KV_PATH, error));
    Deno.exit(2);
  }
  log("info", "KV opened", { path: config.KV_PATH ?? "Deno's default" });
  const service = await startService({ config, kv, log });
  log("info", "queue transport selected", {
    transport: service.transport.name,
    why: service.transportWhy,
  });
  log("info", "review agent selected", {
    kind: config.AGENT_KIND,
    // Never the URL's credentials or query (an API key may sit there).
    url: config.AGENT_URL ? shownUrl(config.AGENT_URL) : undefined,
    why: Deno.env.get("AGENT_KIND")
      ? "AGENT_KIND"
      : config.AGENT_URL
      ? "default: AGENT_URL is set"
      : "default: no AGENT_URL, so the built-in local reviewer (no network)",
  });
  const missing = missingSettings(config);
  if (missing.length) log("warn", "settings missing", { missing });
  handler = service.app.fetch;
  const port = server.addr.port;
  log("info", `listening on http://localhost:${port}`, { port });
  if (dev) console.log(nextSteps({ port, missing }));
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    await service.stop(4_000);
    log("info", "stopped", { signal, handBackMs: Date.now() - started });
    // A client that stopped reading must not hold the exit: its stream was already ended.
    await withDeadline(2_000, () => server.shutdown()).catch(() => {});
    kv.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  return service;
}

if (import.meta.main) {
  const ready = main();
  // Registered at top level, before serving, as Deno Deploy requires. Each run sweeps, drains the
  // queue, and stays open while this instance streams agent sessions, which keeps it alive.
  Deno.cron("review-sweeper", "* * * * *", async () => {
    const service = await ready;
    await service.sweeper.sweep();
    service.transport.wake?.();
    await service.worker.idle(14 * 60_000);
  });
}
