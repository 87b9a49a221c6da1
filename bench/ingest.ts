/**
 * Webhook ingest against its floor. The service (`main.ts` as its own process, `kv-table`, GitHub
 * and the agent never answering, so every owner's slots are full and each webhook only stores a
 * pending review) and the floor server (bare `Deno.serve` + the same HMAC check + one `kv.set`)
 * take the same kind of load in interleaved rounds: signed `pull_request.opened` example payloads
 * for distinct pull requests over 50 owners, 32 connections. Medians over the rounds are reported,
 * with the floor's spread.
 *
 *   deno run -A bench/ingest.ts [--quick]
 *
 * @module
 */
import { prepareDeliveries, runLoad } from "./load.ts";
import { type BenchOptions, round, type SectionResult } from "./report.ts";
import { startBenchService, startFloorServer, WEBHOOK_SECRET } from "./servers.ts";
import { startSilentServer } from "./silent_server.ts";
import { median, percentile, spread } from "./stats.ts";

const OWNERS = 50;
const CONNECTIONS = 32;

interface Round {
  rps: number;
  p99: number;
  p50: number;
}

/**
 * Measures `ingest_rps`, `ingest_p99_ms` and `ingest_ratio` (with its floor).
 *
 * @example
 * ```ts
 * const { figures } = await measureIngest({ quick: false, log: console.error });
 * figures.ingest_ratio; // e.g. 0.55
 * ```
 */
export async function measureIngest(options: BenchOptions): Promise<SectionResult> {
  const rounds = options.quick ? 2 : 5;
  const perRound = options.quick ? 25 : 1000;
  const dir = await Deno.makeTempDir({ prefix: "bench-ingest-" });
  const github = startSilentServer();
  const agent = startSilentServer();
  const stops: Array<() => unknown> = [() => github.close(), () => agent.close()];
  try {
    const floor = await startFloorServer(`${dir}/floor.sqlite3`);
    stops.push(() => floor.stop());
    const service = await startBenchService(`${dir}/service.sqlite3`, {
      GITHUB_API_URL: github.url,
      AGENT_URL: agent.url,
      QUEUE_TRANSPORT: "kv-table",
    });
    stops.push(() => service.stop());
    let next = 1;
    const deliveries = async (count: number) => {
      const batch = await prepareDeliveries({
        count,
        owners: OWNERS,
        firstNumber: next,
        secret: WEBHOOK_SECRET,
      });
      next += count;
      return batch;
    };
    // Warm-up: every owner's slots taken (4 × 50 reviews hang on GitHub), both servers warm.
    const warm = options.quick ? 50 : 400;
    await runLoad(`${service.url}/webhooks/github`, await deliveries(warm), CONNECTIONS);
    await runLoad(`${floor.url}/webhooks/github`, await deliveries(warm), CONNECTIONS);
    const measured = { floor: [] as Round[], service: [] as Round[] };
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so neither always follows the other's garbage collection.
      const order = r % 2 ? ["service", "floor"] as const : ["floor", "service"] as const;
      for (const name of order) {
        const url = name === "floor" ? floor.url : service.url;
        const result = await runLoad(
          `${url}/webhooks/github`,
          await deliveries(perRound),
          CONNECTIONS,
        );
        const refused = result.requests - (result.statuses["202"] ?? 0);
        if (refused > 0) {
          throw new Error(
            `${name} refused ${refused} webhooks: ${JSON.stringify(result.statuses)}`,
          );
        }
        const p99 = percentile(result.latencies, 99);
        measured[name].push({ rps: result.rps, p99, p50: percentile(result.latencies, 50) });
        options.log(
          `ingest round ${r + 1}/${rounds} ${name}: ${result.rps.toFixed(0)}/s, p99 ${
            p99.toFixed(1)
          } ms`,
        );
      }
    }
    return report(measured);
  } finally {
    for (const stop of stops.reverse()) await stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function report(measured: { floor: Round[]; service: Round[] }): SectionResult {
  const m = (rounds: Round[], key: keyof Round) => median(rounds.map((r) => r[key]));
  const floorRps = m(measured.floor, "rps");
  const floorP99 = m(measured.floor, "p99");
  const rps = m(measured.service, "rps");
  const p99 = m(measured.service, "p99");
  // Each round's own ratio, so a noisy moment hits both sides of the same pair.
  const ratios = measured.service.map((s, i) => s.rps / measured.floor[i].rps);
  const p99Ratios = measured.service.map((s, i) => s.p99 / measured.floor[i].p99);
  const ratio = median(ratios);
  const p99Ratio = median(p99Ratios);
  const floorRpsText = `${floorRps.toFixed(0)}/s (${spread(measured.floor.map((r) => r.rps), 0)})`;
  const floorP99Text = `${floorP99.toFixed(1)} ms (${spread(measured.floor.map((r) => r.p99))})`;
  return {
    figures: {
      ingest_rps: round(rps),
      ingest_p50_ms: round(m(measured.service, "p50")),
      ingest_p99_ms: round(p99),
      ingest_ratio: round(ratio),
      ingest_p99_ratio: round(p99Ratio),
      floor_rps: round(floorRps),
      floor_p99_ms: round(floorP99),
    },
    rows: [
      { figure: "ingest_rps", value: `${rps.toFixed(0)}/s`, floor: floorRpsText },
      { figure: "ingest_p99_ms", value: `${p99.toFixed(1)} ms`, floor: floorP99Text },
      {
        figure: "ingest_ratio",
        value: `${ratio.toFixed(2)} (${spread(ratios, 2)})`,
        target: "≥ 0.8",
        ok: ratio >= 0.8,
      },
      {
        figure: "ingest_p99_ratio",
        value: `${p99Ratio.toFixed(2)} (${spread(p99Ratios, 2)})`,
        target: "≤ 1.5",
        ok: p99Ratio <= 1.5,
      },
    ],
  };
}

if (import.meta.main) {
  const result = await measureIngest({
    quick: Deno.args.includes("--quick"),
    log: (line) => console.error(line),
  });
  console.log(JSON.stringify(result, null, 2));
}
