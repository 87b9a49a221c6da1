/**
 * Drain: how fast one service process (`kv-table`, the transport Deno Deploy has) completes a
 * backlog of reviews end to end, what each review costs in KV operations, and how fast webhooks
 * are acknowledged while that backlog drains, set against the ingest floor.
 *
 *   deno run -A bench/drain.ts [--quick]
 *
 * The fake agent answers every session at once and the fake GitHub knows every pull request, so
 * the service (and its KV) is what limits the drain. The figures:
 *
 * - `drain_rps`: reviews completed per second, from the first backlog webhook to the last review
 *   completed (the stream's reviews included: they queue behind the backlog);
 *   `drain_ingest_s` + `drain_drain_s` split that time at the backlog's last ack.
 * - `kv_commits_per_review`, `kv_reads_per_review`, `kv_conflicts_per_review`: the service's
 *   own KV counters over the run ÷ reviews completed. Part of the cost grows with how long a
 *   review runs (lease checks and renewals, the live-feed mark), so a slower drain costs more.
 * - `ack_p99_under_drain_ms`: p99 of a steady stream of webhooks (new pull requests of the same
 *   owners) sent right after the backlog's acks, checked to end before the drain does;
 *   `ack_floor_p99_ms`: the same stream against `bench/floor_server.ts`, once before the backlog
 *   and once after the drain (never during it, which would slow the floor too), median of the
 *   two p99s.
 *
 * @module
 */
import { sseResponse, startFakeAgent } from "../tests/fakes/agent.ts";
import { startFakeGitHub } from "../tests/fakes/github.ts";
import { sha } from "../tests/harness.ts";
import { type Delivery, type LoadResult, prepareDeliveries, runLoad } from "./load.ts";
import { type BenchOptions, renderTable, round, type Row, type SectionResult } from "./report.ts";
import {
  BACKEND_TOKEN,
  type BenchService,
  type FloorServer,
  startBenchService,
  startFloorServer,
  WEBHOOK_SECRET,
} from "./servers.ts";
import { describe, median, percentile, spread } from "./stats.ts";

/** How big a run is. */
interface Plan {
  /** Reviews in the backlog, and the owners they are spread over. */
  reviews: number;
  owners: number;
  /** Connections sending the backlog. */
  loadConnections: number;
  /** Webhooks of the steady stream sent while the backlog drains, and its connections. */
  stream: number;
  streamConnections: number;
  /** Longest wait for the last review to complete. */
  timeoutMs: number;
}

const FULL: Plan = {
  reviews: 2_000,
  owners: 200,
  loadConnections: 32,
  stream: 300,
  streamConnections: 8,
  // About 90 s here (2 shared cores): the drain runs at ~25 reviews/s, see the report.
  timeoutMs: 150_000,
};
const QUICK: Plan = {
  reviews: 50,
  owners: 10,
  loadConnections: 32,
  stream: 50,
  streamConnections: 8,
  timeoutMs: 7_000,
};
const POLL_MS = 50;
const KV_COMMITS_TARGET = 5;
const ACK_FACTOR = 2;

/** The counters of one `/metrics` scrape this section reads. */
interface Counters {
  completed: number;
  failed: number;
  commits: number;
  conflicts: number;
  reads: number;
}

/** The test doubles and processes of one run. */
interface Rig {
  service: BenchService;
  floor: FloorServer;
  /** Comments the fake GitHub received: each review posts one just before it completes. */
  published(): number;
  close(): Promise<void>;
}

/**
 * Runs the drain section: backlog completed per second, KV operations per review, and webhook
 * ack p99 while the backlog drains against the floor's.
 *
 * @example
 * ```ts
 * const { figures, rows } = await measureDrain({ quick: true, log: console.error });
 * console.log(figures.drain_rps, rows.length);
 * ```
 */
export async function measureDrain(options: BenchOptions): Promise<SectionResult> {
  const plan = options.quick ? QUICK : FULL;
  const backlog = await prepareDeliveries({
    count: plan.reviews,
    owners: plan.owners,
    firstNumber: 1,
    secret: WEBHOOK_SECRET,
  });
  // Other pull requests of the same owners: each ack also stores a review behind the backlog.
  const stream = await prepareDeliveries({
    count: plan.stream,
    owners: plan.owners,
    firstNumber: plan.reviews + 1,
    secret: WEBHOOK_SECRET,
  });
  const rig = await startRig(plan);
  try {
    return await runDrain(rig, plan, backlog, stream, options.log);
  } catch (error) {
    options.log(`drain: service stderr: ${rig.service.errors.slice(-5).join(" | ")}`);
    throw error;
  } finally {
    await rig.close();
  }
}

/** Fake GitHub (knowing every pull of the run), instant agent, the service and the floor. */
async function startRig(plan: Plan): Promise<Rig> {
  const dir = await Deno.makeTempDir({ prefix: "bench-drain-" });
  const github = await startFakeGitHub();
  const agent = await startFakeAgent(() => sseResponse([{ event: "done", data: {} }]));
  for (let n = 1; n <= plan.reviews + plan.stream; n++) {
    // The owner formula of `prepareDeliveries`: an unknown pull answers 404 and fails the review.
    const owner = `owner${1 + (n % plan.owners)}`;
    github.setPull({ owner, repo: "service", number: n, headSha: sha(n) });
  }
  const started = await Promise.allSettled([
    startBenchService(`${dir}/service.sqlite3`, {
      QUEUE_TRANSPORT: "kv-table",
      AGENT_URL: agent.url,
      GITHUB_API_URL: github.url,
    }),
    startFloorServer(`${dir}/floor.sqlite3`),
  ]);
  const close = async () => {
    await Promise.allSettled(started.map((r) => r.status === "fulfilled" && r.value.stop()));
    await Promise.allSettled([agent.close(), github.close()]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const [service, floor] = started;
  if (service.status === "rejected" || floor.status === "rejected") {
    // The one that did start must not outlive the run.
    await close();
    throw service.status === "rejected" ? service.reason : (floor as PromiseRejectedResult).reason;
  }
  return {
    service: service.value,
    floor: floor.value,
    published: () => github.comments.length,
    close,
  };
}

/** What the backlog run measured. */
interface DrainRun {
  ingest: LoadResult;
  stream: LoadResult;
  /** Seconds from the first backlog webhook to the last review (backlog and stream) completed. */
  seconds: number;
  /** Reviews of the run not yet published when the stream's last ack arrived. */
  leftAtStreamEnd: number;
  /** Event-loop lag of this process (load generator and fakes) while the stream ran, in ms. */
  lag: number[];
  /** Counter deltas over the run. */
  delta: Counters;
  /** CPU milliseconds the service process used over the run. */
  serviceCpuMs: number;
}

/** The floor first (warm-up + round 1), the backlog with the stream, the floor again. */
async function runDrain(
  rig: Rig,
  plan: Plan,
  backlog: Delivery[],
  stream: Delivery[],
  log: (line: string) => void,
): Promise<SectionResult> {
  const floorUrl = `${rig.floor.url}/webhooks/github`;
  // The floor starts as cold as the service; the backlog warms the service, this the floor.
  await sendAll(floorUrl, stream, plan.streamConnections);
  const floor = [await floorRound(floorUrl, stream, plan, log)];
  const run = await drainRun(rig, plan, backlog, stream, log);
  // After the drain, not during it: the floor must not share the cores with the drain.
  floor.push(await floorRound(floorUrl, stream, plan, log));
  const figures = figuresOf(plan, run, floor);
  return { figures, rows: rowsOf(figures, run, floor) };
}

/** Sends `deliveries` and insists every one was accepted (202). */
async function sendAll(url: string, deliveries: Delivery[], connections: number) {
  const result = await runLoad(url, deliveries, connections);
  const accepted = result.statuses["202"] ?? 0;
  if (accepted !== deliveries.length) {
    const statuses = JSON.stringify(result.statuses);
    throw new Error(`${url}: ${accepted}/${deliveries.length} accepted ${statuses}`);
  }
  return result;
}

/** One floor round: the stream's deliveries against the floor, their latencies. */
async function floorRound(
  url: string,
  stream: Delivery[],
  plan: Plan,
  log: (line: string) => void,
): Promise<number[]> {
  const { latencies } = await sendAll(url, stream, plan.streamConnections);
  log(`drain: floor round: ${describe(latencies)}`);
  return latencies;
}

/**
 * The backlog at `loadConnections`, then at once the stream at `streamConnections` while the
 * backlog drains, then waits for every review of both to complete.
 */
async function drainRun(
  rig: Rig,
  plan: Plan,
  backlog: Delivery[],
  stream: Delivery[],
  log: (line: string) => void,
): Promise<DrainRun> {
  const { url, pid } = rig.service;
  const webhooks = `${url}/webhooks/github`;
  const total = plan.reviews + plan.stream;
  const before = await scrape(url);
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const ingest = await sendAll(webhooks, backlog, plan.loadConnections);
  log(`drain: ${plan.reviews} webhooks acked in ${ingest.seconds.toFixed(2)} s; stream starts`);
  const lag = watchLag();
  const streamed = await sendAll(webhooks, stream, plan.streamConnections);
  const lags = lag.stop();
  const leftAtStreamEnd = total - rig.published();
  log(
    `drain: stream under drain: ${describe(streamed.latencies)}; ` +
      (leftAtStreamEnd > 0
        ? `the drain was still running at its end (${leftAtStreamEnd}/${total} not yet published)`
        : "the drain had ENDED before it did: not measured under drain") +
      `; this process's event-loop lag p99 ${percentile(lags, 99).toFixed(1)} ms`,
  );
  const at = await waitForCompleted(rig, before, total, t0 + plan.timeoutMs, log);
  const serviceCpuMs = cpuMs(pid) - cpu0;
  const delta = deltaOf(before, await scrape(url));
  log(`drain: ${total} completed in ${((at - t0) / 1000).toFixed(2)} s`);
  return {
    ingest,
    stream: streamed,
    seconds: (at - t0) / 1000,
    leftAtStreamEnd,
    lag: lags,
    delta,
    serviceCpuMs,
  };
}

/**
 * Samples this process's event-loop lag every few ms until stopped: the acks are timed here,
 * while the fakes serve the drain from the same loop.
 */
function watchLag(everyMs = 5): { stop(): number[] } {
  const lags: number[] = [];
  let expected = performance.now() + everyMs;
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - expected));
    expected = now + everyMs;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return lags;
    },
  };
}

/**
 * Waits until `total` more reviews completed than in `before`, and returns when it saw that.
 * The fake GitHub's comment count is watched every {@link POLL_MS} (free), `/metrics` only once
 * it says all are published: each scrape reads the owners overview from KV (about one read per
 * owner), which at 20 scrapes a second would weigh on the very drain it measures.
 */
async function waitForCompleted(
  rig: Rig,
  before: Counters,
  total: number,
  deadline: number,
  log: (line: string) => void,
): Promise<number> {
  let last = -1;
  for (;;) {
    const now = rig.published() >= total ? await scrape(rig.service.url) : undefined;
    const at = performance.now();
    if (now && now.completed - before.completed >= total) return at;
    if (now && now.failed > before.failed) {
      throw new Error(`${now.failed - before.failed} reviews failed`);
    }
    if (at > deadline) throw await overdue(rig, before, total);
    const tenth = Math.floor((rig.published() * 10) / total);
    if (tenth !== last) log(`drain: ${rig.published()}/${total} published`);
    last = tenth;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * Sums the samples of counter `name` in a Prometheus text, only those carrying `label` if given
 * (`metricValue` sums every label set, and `ai_review_reviews_total` has one per status).
 */
function counterIn(text: string, name: string, label?: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`)) continue;
    if (label && !line.includes(label)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** One `/metrics` scrape of the service, read into the counters this section uses. */
async function scrape(url: string): Promise<Counters> {
  const res = await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${BACKEND_TOKEN}` },
  });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  return {
    completed: counterIn(text, "ai_review_reviews_total", 'status="completed"'),
    failed: counterIn(text, "ai_review_reviews_total", 'status="failed"'),
    commits: counterIn(text, "ai_review_kv_commits_total"),
    conflicts: counterIn(text, "ai_review_kv_commit_conflicts_total"),
    reads: counterIn(text, "ai_review_kv_reads_total"),
  };
}

/** The error of a run that missed its deadline, with what the service got done. */
async function overdue(rig: Rig, before: Counters, total: number): Promise<Error> {
  const { completed, failed } = deltaOf(before, await scrape(rig.service.url));
  return new Error(
    `drain missed its deadline: ${rig.published()}/${total} published, ${completed} completed, ` +
      `${failed} failed`,
  );
}

/** `after − before`, counter by counter. */
function deltaOf(before: Counters, after: Counters): Counters {
  return {
    completed: after.completed - before.completed,
    failed: after.failed - before.failed,
    commits: after.commits - before.commits,
    conflicts: after.conflicts - before.conflicts,
    reads: after.reads - before.reads,
  };
}

/** CPU time (user + system) a process has used, in ms, from `/proc/<pid>/stat` (Linux). */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces); utime and stime are in 10 ms ticks.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The numbers a run yields, for the JSON line. */
function figuresOf(plan: Plan, run: DrainRun, floor: number[][]): Record<string, number> {
  const total = plan.reviews + plan.stream;
  const per = (n: number) => round(n / run.delta.completed);
  return {
    drain_rps: round(total / run.seconds),
    drain_reviews: total,
    drain_ingest_s: round(run.ingest.seconds),
    drain_drain_s: round(run.seconds - run.ingest.seconds),
    drain_service_cpu_ms_per_review: per(run.serviceCpuMs),
    kv_commits_per_review: per(run.delta.commits),
    kv_reads_per_review: per(run.delta.reads),
    kv_conflicts_per_review: per(run.delta.conflicts),
    ack_p99_under_drain_ms: round(percentile(run.stream.latencies, 99)),
    ack_floor_p99_ms: round(floorP99(floor)),
    ack_unpublished_at_stream_end: run.leftAtStreamEnd,
    ack_bench_lag_p99_ms: round(percentile(run.lag, 99)),
  };
}

/** The floor's p99: the median of its rounds' p99s. */
function floorP99(floor: number[][]): number {
  return median(floor.map((latencies) => percentile(latencies, 99)));
}

/** The table rows of a run's figures `f`. */
function rowsOf(f: Record<string, number>, run: DrainRun, floor: number[][]): Row[] {
  const underDrain = run.leftAtStreamEnd > 0;
  const ackOk = underDrain && f.ack_p99_under_drain_ms <= ACK_FACTOR * f.ack_floor_p99_ms;
  const floorText = `${f.ack_floor_p99_ms.toFixed(1)} ms (${
    spread(floor.map((l) => percentile(l, 99)))
  })`;
  return [
    {
      figure: "drain_rps",
      value: `${f.drain_rps.toFixed(1)}/s (${f.drain_reviews} reviews: ingest ${
        f.drain_ingest_s.toFixed(1)
      } s + drain ${f.drain_drain_s.toFixed(1)} s)`,
    },
    {
      figure: "drain_service_cpu_ms_per_review",
      value: `${f.drain_service_cpu_ms_per_review.toFixed(1)} ms`,
    },
    {
      figure: "kv_commits_per_review",
      value: f.kv_commits_per_review.toFixed(2),
      target: `≤ ${KV_COMMITS_TARGET}`,
      ok: f.kv_commits_per_review <= KV_COMMITS_TARGET,
    },
    { figure: "kv_reads_per_review", value: f.kv_reads_per_review.toFixed(2) },
    { figure: "kv_conflicts_per_review", value: f.kv_conflicts_per_review.toFixed(3) },
    {
      figure: "ack_p99_under_drain_ms",
      value: `${f.ack_p99_under_drain_ms.toFixed(1)} ms (${
        underDrain ? `${run.leftAtStreamEnd} left to drain at the end` : "NOT under drain"
      })`,
      floor: floorText,
      target: `≤ ${ACK_FACTOR} × floor`,
      ok: ackOk,
    },
    { figure: "ack_floor_p99_ms", value: `${f.ack_floor_p99_ms.toFixed(1)} ms`, floor: floorText },
  ];
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const result = await measureDrain({ quick, log: (line) => console.error(line) });
  console.log(renderTable(result.rows));
  console.log(JSON.stringify(result.figures));
}
