/**
 * Seeded, deterministic simulation of the review orchestrator over the real KV functions: webhooks
 * (late, twice, out of order, reopened), queue messages (duplicate, stale, reordered), attempts
 * following the pipeline's steps under leases, API cancels, crashes, shutdowns, clock skew and
 * lease expiry, sweeps, commits that fail before applying (`database is locked`) or whose answer
 * is lost, and other actors' steps run between a transaction's reads and its commit. After every
 * step: sessions per owner within the limit, every review ends once, counters equal what they
 * count, FIFO lines, one comment per pull request; after draining: the newest head of every open
 * pull request reviewed, all counters back to zero. See `tests/sim/world.ts`.
 *
 * Replay one seed: `SIM_SEED=<n> [SIM_STEPS=<n>] [SIM_TRACE=1] [SIM_SURVEY=1] deno test -A
 * tests/simulation_test.ts` (SIM_SURVEY records every violation instead of failing at the first).
 */
import assert from "node:assert/strict";
import { type Faults, Sim, type SimReport, SimViolation } from "./sim/world.ts";

const FAULTS: Faults = { locked: 0.02, lost: 0.005, interpose: 0.05 };
/**
 * Fixed seeds, run side by side (each over its own KV: a run spends most of its time waiting for
 * KV, so several at once use the cores); 8 × 12,500 = 100,000 steps, plus draining.
 */
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
/**
 * Seeds that exposed a defect (kept while it stands, and as regression runs after its fix):
 * 11 and 42 — a review that read an older head supersedes the review of the newest head created
 * after the read, because `supersedeOthers` compares `createdAt` and the read time from two
 * instances' clocks (skew up to CLOCK_SKEW_MS); nothing else stops it when the newer review has
 * no newer `prUpdatedAt` (an API or follow-up review, or two pushes in one second of GitHub's
 * `updated_at`). The newest head is then never reviewed (invariant 6).
 */
const REGRESSION_SEEDS = [11, 42];
const STEPS = 12_500;

const env = (name: string) => Deno.env.get(name);

function summary(r: SimReport, ms: number): string {
  const limits = [...r.limits].sort((a, b) => a - b);
  return `simulation: seed=${r.seed}, steps=${r.steps} (+${r.nestedSteps} raced in, ` +
    `+${r.drainSteps} draining), owners=${r.owners} (limits ${limits.join(",")}), ` +
    `instances=${r.instances}, prs=${r.prs}, reviews=${r.reviews}, ` +
    `sessions max/limit per owner ${r.maxSessionsPerOwner.map(([m, l]) => `${m}/${l}`).join(" ")}` +
    ` (${r.ownersAtLimit} owners reached their limit, peak ${r.sessionsPeak} open at once), ` +
    `attempts=${r.attemptsStarted}, commits=${r.commits} (locked ${r.lockedInjected}, lost ` +
    `answers ${r.lostInjected}, raced ${r.interposed}), messages=${r.messagesSent} (dropped ` +
    `${r.messagesDropped} by starts, delivered ${r.deliveries}, no-op ${r.staleDeliveries}), lease expiries=${r.leaseExpiries}, ` +
    `orphaned leases=${r.orphanLeases}, skewed line joins=${r.skewedJoins}, ` +
    `crashes=${r.crashes}, shutdowns=${r.shutdowns}, ` +
    `comments=${r.comments}, purged=${r.purged}, simulated ${r.simMinutes} min, outcomes ` +
    `${JSON.stringify(r.outcomes)}, fingerprint=${r.fingerprint}, ` +
    `violations=${r.violations.length}, ${Math.round(ms)} ms`;
}

function printViolations(report: SimReport) {
  const byInvariant = new Map<number, number>();
  for (const v of report.violations) {
    byInvariant.set(v.invariant, (byInvariant.get(v.invariant) ?? 0) + 1);
  }
  console.log(`seed ${report.seed}: violations by invariant ${JSON.stringify([...byInvariant])}`);
  const seen = new Set<string>();
  for (const v of report.violations) {
    const kind = `${v.invariant}:${v.message.replace(/\b[0-9a-f]{8,}\b|\b[a-z]+\d+\b|\d+/g, "_")}`;
    if (seen.has(kind)) continue;
    seen.add(kind);
    console.log(v.report);
  }
}

async function simulate(seed: number, steps: number, quiet = false): Promise<SimReport> {
  const started = performance.now();
  const sim = await Sim.open({
    seed,
    steps,
    faults: FAULTS,
    survey: env("SIM_SURVEY") === "1",
    trace: env("SIM_TRACE") === "1",
  });
  try {
    const report = await sim.run();
    if (!quiet) console.log(summary(report, performance.now() - started));
    if (report.violations.length) printViolations(report);
    return report;
  } finally {
    sim.close();
  }
}

const only = env("SIM_SEED");
const seeds = only ? [Number(only)] : [...SEEDS, ...REGRESSION_SEEDS];
const steps = Number(env("SIM_STEPS") ?? STEPS);

Deno.test(`simulation: ${seeds.length} seeds × ${steps} steps`, async () => {
  const started = performance.now();
  const results = await Promise.allSettled(seeds.map((seed) => simulate(seed, steps)));
  const failures: string[] = [];
  let total = 0;
  results.forEach((result, i) => {
    if (result.status === "rejected") {
      total += steps;
      const error = result.reason;
      failures.push(`seed ${seeds[i]}: ${error instanceof Error ? error.message : error}`);
      if (!(error instanceof SimViolation)) console.error(error);
      return;
    }
    total += result.value.steps;
    for (const v of result.value.violations) failures.push(v.report);
  });
  console.log(
    `simulation: ${seeds.length} seeds, ${total} steps in ${
      Math.round(performance.now() - started)
    } ms`,
  );
  if (failures.length) assert.fail(`${failures.length} failing runs:\n\n${failures.join("\n\n")}`);
  if (!only) assert.ok(total >= 100_000, `only ${total} steps`);
});

Deno.test("simulation: a seed replays the same run", async () => {
  const a = await simulate(0x5eed00ff, 1_500, true);
  const b = await simulate(0x5eed00ff, 1_500, true);
  assert.equal(a.fingerprint, b.fingerprint);
  assert.equal(a.commits, b.commits);
});
