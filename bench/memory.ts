/**
 * Memory under a backlog: the service process's RSS with 2,000 and with 20,000 pending reviews
 * stored, ingested by that process itself through signed webhooks. GitHub never answers, so every
 * owner's slots stay full and the rest wait; what grows with the backlog must live in KV, not in
 * the process.
 *
 *   deno run -A bench/memory.ts [--quick]
 *
 * @module
 */
import { prepareDeliveries, runLoad } from "./load.ts";
import { type BenchOptions, round, type Row, type SectionResult } from "./report.ts";
import {
  BACKEND_TOKEN,
  type BenchService,
  rssMb,
  startBenchService,
  WEBHOOK_SECRET,
} from "./servers.ts";
import { startSilentServer } from "./silent_server.ts";

const CHUNK = 1_000;
const CONNECTIONS = 32;
const SETTLE_MS = 1_000;
const RSS_READS = 5;

/** One backlog level: how many reviews are stored when RSS is read. */
interface Level {
  figure: string;
  reviews: number;
}

/** What one level measured. */
interface LevelResult {
  rss: number;
  /** Webhooks per second while this level was ingested. */
  rps: number;
  pending: number;
  active: number;
}

/**
 * Measures `rss_mb_2k`, `rss_mb_20k` and their ratio (quick: 20 and 200 reviews, over 2 owners
 * so some of them wait).
 *
 * @example
 * ```ts
 * const { figures } = await measureMemory({ quick: true, log: console.error });
 * console.log(figures.rss_ratio);
 * ```
 */
export async function measureMemory(options: BenchOptions): Promise<SectionResult> {
  const levels: Level[] = options.quick
    ? [{ figure: "rss_mb_2k", reviews: 20 }, { figure: "rss_mb_20k", reviews: 200 }]
    : [{ figure: "rss_mb_2k", reviews: 2_000 }, { figure: "rss_mb_20k", reviews: 20_000 }];
  // 50 owners hold 200 slots: at the quick run's 20 reviews nothing would be pending.
  const owners = options.quick ? 2 : 50;
  const dir = await Deno.makeTempDir({ prefix: "bench-memory-" });
  const github = startSilentServer();
  let service: BenchService | undefined;
  try {
    service = await startBenchService(`${dir}/kv.sqlite3`, {
      QUEUE_TRANSPORT: "kv-table",
      GITHUB_API_URL: github.url,
      // Never reached (every review waits on GitHub first), but a kind that needs no network.
      AGENT_URL: github.url,
    });
    // The empty process, for how much of each figure the backlog (and its ingest) added.
    const start = (await settledRss(service)).rss;
    options.log(`memory: started at ${start.toFixed(1)} MiB`);
    const results: LevelResult[] = [];
    let stored = 0;
    for (const level of levels) {
      const rps = await ingest(service, stored, level.reviews - stored, owners, options);
      stored = level.reviews;
      results.push({ ...await settledRss(service), rps });
      const r = results[results.length - 1];
      options.log(
        `memory: ${stored} reviews (${r.active} active, ${r.pending} pending): ` +
          `${r.rss.toFixed(1)} MiB, ingest ${r.rps.toFixed(0)}/s`,
      );
    }
    return memoryResult(start, results);
  } finally {
    await service?.stop();
    github.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Sends `count` webhooks numbered after the `already` sent, in chunks so the bench process holds
 * at most one chunk of ~25 KB bodies; returns the webhooks per second.
 */
async function ingest(
  service: BenchService,
  already: number,
  count: number,
  owners: number,
  options: BenchOptions,
): Promise<number> {
  const t0 = performance.now();
  for (let sent = 0; sent < count; sent += CHUNK) {
    const deliveries = await prepareDeliveries({
      count: Math.min(CHUNK, count - sent),
      owners,
      firstNumber: already + sent + 1,
      secret: WEBHOOK_SECRET,
    });
    const load = await runLoad(`${service.url}/webhooks/github`, deliveries, CONNECTIONS);
    if ((load.statuses["202"] ?? 0) !== deliveries.length) {
      throw new Error(
        `webhooks answered ${JSON.stringify(load.statuses)}; ` +
          service.errors.slice(-5).join(" | "),
      );
    }
    if (count > CHUNK) {
      options.log(`memory: ${already + sent + deliveries.length} sent (${load.rps.toFixed(0)}/s)`);
    }
  }
  return count / ((performance.now() - t0) / 1000);
}

/**
 * RSS once the process has settled: a pause, then the list and overview paths (`/stats`,
 * `/health`, `/reviews?limit=100`) so their cost is in the figure, then the most of a few reads.
 */
async function settledRss(service: BenchService): Promise<Omit<LevelResult, "rps">> {
  await sleep(SETTLE_MS);
  const stats = await getJson(service, "/stats");
  await getJson(service, "/health");
  const list = await getJson(service, "/reviews?limit=100");
  if (!Array.isArray(list.reviews)) throw new Error(`/reviews answered ${JSON.stringify(list)}`);
  let rss = 0;
  for (let i = 0; i < RSS_READS; i++) {
    rss = Math.max(rss, await rssMb(service.pid));
    await sleep(200);
  }
  return { rss, pending: Number(stats.pending), active: Number(stats.active) };
}

/** `GET path` on the service with the bearer token, as JSON. */
async function getJson(service: BenchService, path: string) {
  const res = await fetch(`${service.url}${path}`, {
    headers: { authorization: `Bearer ${BACKEND_TOKEN}` },
  });
  if (!res.ok) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
  return await res.json();
}

/** The figures and rows from the empty process and the two levels. */
function memoryResult(start: number, [small, large]: LevelResult[]): SectionResult {
  const ratio = large.rss / small.rss;
  const figures = {
    rss_mb_start: round(start),
    rss_mb_2k: round(small.rss),
    rss_mb_20k: round(large.rss),
    rss_ratio: round(ratio),
    memory_ingest_rps: round(large.rps),
  };
  const rows: Row[] = [
    { figure: "rss_mb_start", value: `${start.toFixed(1)} MiB (no reviews)` },
    {
      figure: "rss_mb_2k",
      value: `${small.rss.toFixed(1)} MiB (${small.pending} pending)`,
      target: "≤ 150",
      ok: small.rss <= 150,
    },
    {
      figure: "rss_mb_20k",
      value: `${large.rss.toFixed(1)} MiB (${large.pending} pending)`,
      target: `≤ ${(1.1 * small.rss).toFixed(1)} (1.1 × 2k)`,
      ok: ratio <= 1.1,
    },
    { figure: "rss_ratio", value: ratio.toFixed(3), target: "≤ 1.1", ok: ratio <= 1.1 },
    { figure: "memory_ingest_rps", value: `${large.rps.toFixed(0)}/s (32 connections)` },
  ];
  return { figures, rows };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (import.meta.main) {
  const t0 = performance.now();
  const result = await measureMemory({
    quick: Deno.args.includes("--quick"),
    log: (line) => console.error(line),
  });
  console.error(`memory: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(JSON.stringify(result, null, 2));
}
