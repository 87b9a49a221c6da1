/**
 * Owner isolation: how long owner B's first review takes to reach the agent while owner A has a
 * long pending line behind full slots, against the same with A idle.
 *
 * Two service processes run side by side on their own KV files: on the busy one A has 5,000
 * pending reviews (its GitHub never answers, so its slots stay full); on the idle one A sent
 * nothing. Samples alternate between the two, each for a fresh owner B, so machine noise falls
 * on both sides alike; the figure is the ratio of the medians.
 *
 *   deno run -A bench/isolation.ts [--quick]
 *
 * @module
 */
import { sseResponse, startFakeAgent } from "../tests/fakes/agent.ts";
import { startFakeGitHub } from "../tests/fakes/github.ts";
import { sha } from "../tests/harness.ts";
import { type Delivery, postDelivery, prepareDeliveries, runLoad } from "./load.ts";
import { type BenchOptions, round, type Row, type SectionResult } from "./report.ts";
import { BACKEND_TOKEN, type BenchService, startBenchService, WEBHOOK_SECRET } from "./servers.ts";
import { median, percentile, spread } from "./stats.ts";

/** Owner A's login (`owner1`, as `prepareDeliveries` names owner id 1). */
const OWNER_A = "owner1";
/** B owners get ids from here on (the busy side) and from `+ 100_000` (the idle side). */
const FIRST_B_OWNER = 10_000;
const CHUNK = 1_000;
/**
 * A's webhooks all commit to A's one owner entry, so concurrent ones conflict and retry: 4
 * connections ingest ~550/s here, 32 only ~130–290/s.
 */
const CONNECTIONS = 4;
const SAMPLE_TIMEOUT_MS = 30_000;

/** A GitHub stand-in in front of a fake: holds owner A's requests, passes on the rest. */
interface HangingRouter {
  url: string;
  /** Requests for owner A held so far (a timed-out one stays held until close). */
  readonly held: number;
  close(): Promise<void>;
}

/** One side of the comparison: its service and the fakes it talks to. */
interface Side {
  name: "busy" | "idle";
  service: BenchService;
  router: HangingRouter;
  /** Sets the pull B's review fetches (the fake GitHub answers 404 for any other). */
  setPull(owner: string, number: number): void;
  /** When (performance.now()) the agent session of each review id opened. */
  opened: Map<string, number>;
  /** The next B owner id of this side. */
  nextOwner: number;
  close(): Promise<void>;
}

/**
 * Measures `isolation_ratio`: B's first-review start latency with A's 5,000 pending (quick: 50)
 * over the same with A idle, from interleaved samples on two services, medians.
 *
 * @example
 * ```ts
 * const { figures } = await measureIsolation({ quick: true, log: console.error });
 * console.log(figures.isolation_ratio);
 * ```
 */
export async function measureIsolation(options: BenchOptions): Promise<SectionResult> {
  const pending = options.quick ? 50 : 5_000;
  const samples = options.quick ? 5 : 30;
  const dir = await Deno.makeTempDir({ prefix: "bench-isolation-" });
  const sides: Side[] = [];
  try {
    sides.push(await startSide("busy", dir, FIRST_B_OWNER));
    sides.push(await startSide("idle", dir, FIRST_B_OWNER + 100_000));
    const [busy, idle] = sides;
    await fillOwnerA(busy, pending, options);
    // The first reviews of a process pay for compiling the pipeline; neither side should.
    for (let i = 0; i < 2; i++) for (const side of sides) await sampleLatency(side);
    const latencies = await interleavedSamples(busy, idle, samples, options);
    await checkStillPending(busy, pending, options);
    return isolationResult(latencies.busy, latencies.idle);
  } finally {
    for (const side of sides) await side.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Starts a fake GitHub, the router holding A's requests in front of it, a fake agent that ends
 * every session at once, and a `kv-table` service pointed at them.
 */
async function startSide(name: Side["name"], dir: string, firstOwner: number): Promise<Side> {
  const github = await startFakeGitHub();
  const router = startHangingRouter(github.url, OWNER_A);
  const opened = new Map<string, number>();
  const agent = await startFakeAgent((session) => {
    opened.set(session.body.reviewId, performance.now());
    return sseResponse([{ event: "done", data: {} }]);
  });
  const service = await startBenchService(`${dir}/${name}.sqlite3`, {
    QUEUE_TRANSPORT: "kv-table",
    GITHUB_API_URL: router.url,
    AGENT_URL: agent.url,
  }).catch(async (error) => {
    await Promise.all([router.close(), agent.close(), github.close()]);
    throw error;
  });
  return {
    name,
    service,
    router,
    opened,
    nextOwner: firstOwner,
    setPull: (owner, number) =>
      github.setPull({ owner, repo: "service", number, headSha: sha(number) }),
    async close() {
      await service.stop();
      await Promise.all([router.close(), agent.close(), github.close()]);
    },
  };
}

/**
 * A server that holds every request under `/repos/<holdOwner>/` until it closes (never a 404:
 * that would fail A's reviews fast and drain its line), and proxies everything else to `upstream`.
 * Held requests do not watch `request.signal`: a client that times out just leaves its handler
 * waiting, and listening would only make Deno print its legacy-abort notice.
 */
function startHangingRouter(upstream: string, holdOwner: string): HangingRouter {
  const closing = new AbortController();
  const prefix = `/repos/${holdOwner.toLowerCase()}/`;
  let held = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      if (!url.pathname.toLowerCase().startsWith(prefix)) return await proxy(req, upstream);
      held++;
      await aborted(closing.signal);
      return new Response(null, { status: 503 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get held() {
      return held;
    },
    async close() {
      closing.abort();
      await server.shutdown();
    },
  };
}

/** Resolves once `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** Passes `req` on to `upstream` and its answer back. */
async function proxy(req: Request, upstream: string): Promise<Response> {
  const url = new URL(req.url);
  const headers = new Headers(req.headers);
  // fetch sets these for the new connection and body.
  headers.delete("host");
  headers.delete("content-length");
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const res = await fetch(`${upstream}${url.pathname}${url.search}`, {
    method: req.method,
    headers,
    body: hasBody ? await req.arrayBuffer() : undefined,
    redirect: "manual",
  });
  return new Response(res.body, { status: res.status, headers: res.headers });
}

/**
 * Sends A's `count` webhooks to the busy side in chunks (bodies are ~25 KB each), then waits
 * until A holds all its slots with requests hanging on GitHub and the rest are pending.
 */
async function fillOwnerA(side: Side, count: number, options: BenchOptions): Promise<void> {
  const t0 = performance.now();
  for (let first = 1; first <= count; first += CHUNK) {
    const deliveries = await prepareDeliveries({
      count: Math.min(CHUNK, count - first + 1),
      owners: 1,
      firstNumber: first,
      secret: WEBHOOK_SECRET,
    });
    const load = await runLoad(`${side.service.url}/webhooks/github`, deliveries, CONNECTIONS);
    if ((load.statuses["202"] ?? 0) !== deliveries.length) {
      throw new Error(`owner A's webhooks answered ${JSON.stringify(load.statuses)}`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  options.log(`isolation: ${count} webhooks for ${OWNER_A} in ${seconds.toFixed(1)} s`);
  const usage = await waitForOwnerA(side, count);
  options.log(
    `isolation: ${OWNER_A} active ${usage.active}, pending ${usage.pending}, ` +
      `${side.router.held} GitHub requests held`,
  );
}

/** A's slots and line as the busy service reports them. */
interface OwnerAUsage {
  active: number;
  pending: number;
}

/** Polls until A's slots are all taken, its GitHub requests hang and the rest are pending. */
async function waitForOwnerA(side: Side, count: number): Promise<OwnerAUsage> {
  const deadline = Date.now() + 30_000;
  let usage: OwnerAUsage = { active: 0, pending: 0 };
  while (Date.now() < deadline) {
    usage = await ownerAUsage(side.service);
    const full = usage.active > 0 && usage.active + usage.pending === count;
    if (full && side.router.held >= usage.active) return usage;
    await sleep(100);
  }
  throw new Error(
    `owner A never settled: ${JSON.stringify(usage)}, ${side.router.held} requests held; ` +
      side.service.errors.slice(-5).join(" | "),
  );
}

/** `GET /owners/org/1` on the service. */
async function ownerAUsage(service: BenchService): Promise<OwnerAUsage> {
  const res = await fetch(`${service.url}/owners/org/1`, {
    headers: { authorization: `Bearer ${BACKEND_TOKEN}` },
  });
  const body = await res.json();
  return { active: Number(body.active ?? 0), pending: Number(body.pending ?? 0) };
}

/** After the samples, A's line must still be there: otherwise the busy side was not busy. */
async function checkStillPending(side: Side, count: number, options: BenchOptions) {
  const usage = await ownerAUsage(side.service);
  options.log(
    `isolation: after sampling ${OWNER_A} active ${usage.active}, ` +
      `pending ${usage.pending}`,
  );
  // A few of A's reviews may have failed after GitHub timeouts and freed slots; most must wait.
  if (usage.pending < count * 0.9 - 4) {
    throw new Error(`owner A's line drained during the run: ${JSON.stringify(usage)}`);
  }
}

/**
 * `count` samples per side, alternating which side goes first so neither always follows the
 * other's review.
 */
async function interleavedSamples(
  busy: Side,
  idle: Side,
  count: number,
  options: BenchOptions,
): Promise<{ busy: number[]; idle: number[] }> {
  const out = { busy: [] as Sample[], idle: [] as Sample[] };
  for (let i = 0; i < count; i++) {
    const order = i % 2 === 0 ? [busy, idle] : [idle, busy];
    for (const side of order) out[side.name].push(await sampleLatency(side));
    if ((i + 1) % 10 === 0 || i + 1 === count) {
      options.log(`isolation: ${i + 1}/${count} sample pairs`);
    }
  }
  for (const name of ["busy", "idle"] as const) {
    const answer = median(out[name].map((s) => s.answerMs));
    options.log(`isolation: ${name} webhook answer p50 ${answer.toFixed(1)} ms`);
  }
  return { busy: out.busy.map((s) => s.startMs), idle: out.idle.map((s) => s.startMs) };
}

/** One sample's times from sending the webhook, in milliseconds. */
interface Sample {
  /** To the agent session of B's review opening: the figure. */
  startMs: number;
  /** To the webhook's answer: the part of `startMs` that is ingest. */
  answerMs: number;
}

/**
 * One sample: a fresh owner B opens a PR; the time from sending the webhook to the agent session
 * of its review opening. Waits for the review to finish so samples do not overlap.
 */
async function sampleLatency(side: Side): Promise<Sample> {
  const ownerId = side.nextOwner++;
  side.setPull(`owner${ownerId}`, 1);
  const [delivery] = await prepareDeliveries({
    count: 1,
    owners: 1,
    firstNumber: 1,
    secret: WEBHOOK_SECRET,
    ownerOffset: ownerId - 1,
  });
  const t0 = performance.now();
  const reviewId = await sendDelivery(side.service.url, delivery);
  const answerMs = performance.now() - t0;
  const openedAt = await waitForSession(side, reviewId);
  await waitForFinish(side.service, reviewId);
  return { startMs: openedAt - t0, answerMs };
}

/** Posts one delivery and returns the review id it created. */
async function sendDelivery(url: string, d: Delivery): Promise<string> {
  const res = await postDelivery(`${url}/webhooks/github`, d);
  const body = await res.json();
  if (res.status !== 202) throw new Error(`webhook answered ${res.status} ${JSON.stringify(body)}`);
  return String(body.reviewId);
}

/** When B's agent session opened (it may open before the webhook's answer arrives). */
async function waitForSession(side: Side, reviewId: string): Promise<number> {
  const deadline = Date.now() + SAMPLE_TIMEOUT_MS;
  while (!side.opened.has(reviewId)) {
    if (Date.now() > deadline) {
      throw new Error(
        `${side.name}: no agent session for ${reviewId}; ` +
          side.service.errors.slice(-5).join(" | "),
      );
    }
    // 1 ms polls: the arrival time is taken by the agent, the poll only notices it.
    await sleep(1);
  }
  return side.opened.get(reviewId)!;
}

/** Polls the review until it is finished (its comment posted, its slot free). */
async function waitForFinish(service: BenchService, reviewId: string): Promise<void> {
  const deadline = Date.now() + SAMPLE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const res = await fetch(`${service.url}/reviews/${reviewId}`, {
      headers: { authorization: `Bearer ${BACKEND_TOKEN}` },
    });
    const body = await res.json();
    if (["completed", "failed", "cancelled"].includes(body.status)) return;
    await sleep(20);
  }
  throw new Error(`review ${reviewId} did not finish`);
}

/** The figures and rows from both sides' latencies. */
function isolationResult(busy: number[], idle: number[]): SectionResult {
  const busyP50 = median(busy);
  const idleP50 = median(idle);
  const ratio = busyP50 / idleP50;
  const figures = {
    isolation_ratio: round(ratio),
    isolation_busy_p50_ms: round(busyP50),
    isolation_idle_p50_ms: round(idleP50),
    isolation_idle_p90_ms: round(percentile(idle, 90)),
    isolation_busy_p90_ms: round(percentile(busy, 90)),
  };
  const rows: Row[] = [
    {
      figure: "isolation_ratio",
      value: ratio.toFixed(2),
      target: "≤ 1.1",
      ok: ratio <= 1.1,
    },
    {
      figure: "isolation_busy_p50_ms",
      value: `${busyP50.toFixed(1)} ms (p90 ${percentile(busy, 90).toFixed(1)}, n=${busy.length})`,
      floor: `${spread(busy)} ms`,
    },
    {
      figure: "isolation_idle_p50_ms",
      value: `${idleP50.toFixed(1)} ms (p90 ${percentile(idle, 90).toFixed(1)}, n=${idle.length})`,
      floor: `${spread(idle)} ms`,
    },
  ];
  return { figures, rows };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (import.meta.main) {
  const t0 = performance.now();
  const result = await measureIsolation({
    quick: Deno.args.includes("--quick"),
    log: (line) => console.error(line),
  });
  console.error(`isolation: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(JSON.stringify(result, null, 2));
}
