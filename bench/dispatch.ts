/**
 * Dispatch latency through the real service process (`main.ts`, spawned): from the commit that
 * completes a review (its `finishedAt`) to the agent session of the owner's next pending review
 * opening (the fake agent's `receivedAt`). One owner, `MAX_CONCURRENT_PER_OWNER=1`: every other
 * review waits pending, so each completion hands the slot to the next one. The agent answers
 * `done` at once and the fake GitHub knows every pull request.
 *
 *   deno run -A bench/dispatch.ts [--quick]
 *
 * Two parts, each with its own temp dir, fakes and processes:
 *
 * 1. One process per transport (`kv-queue`, `kv-table`) with the fast path on (the default):
 *    `dispatch_kv_queue_*`, `dispatch_kv_table_*`, and `dispatch_p50_ms` / `dispatch_p99_ms`,
 *    the worse transport. `*_claim_*` (no target) is the part up to the next review's `startedAt`
 *    (its claim commit); the rest is what the attempt does before it opens the session (reading
 *    the pull request, its diff and its check runs from GitHub).
 * 2. Two processes on one KV file (`kv-table`, `QUEUE_POLL_MS=200`, `FAST_PATH=false`), each
 *    with its own fake agent: the agent a session reached names the process that opened it, and
 *    the process that completed review i is the one whose agent ran review i.
 *
 * Why part 2 forces its cross hand-offs: the completing process always gets the first look at
 * what its commit dispatched. With `FAST_PATH=true` it starts the review in the same call; with
 * `FAST_PATH=false` its commit still wakes its own `kv-table` listener at once (the worker's
 * `kick` calls `transport.wake()`, and `kv.watch` of the wake key fires in the writing process),
 * while the other process only looks every `QUEUE_POLL_MS`. So in normal operation a hand-off
 * crosses only when the other process's poll lands inside the completing process's own claim
 * window (a few ms): rare, and then no slower than that window, which says nothing about the
 * poll. Part 2 first drains a backlog in normal operation and reports how many hand-offs crossed
 * (`dispatch_cross_handoffs` of `dispatch_cross_handoffs_total`), with fast path off in both, the
 * setting that leaves the other process the most room. Then it measures the case the poll
 * exists for, where the process that made the review due cannot take it: one review at a time
 * runs (held) in one process, that process gets SIGTERM and hands it back (`main.ts` stops its
 * listener first), and the other process must pick it up. `dispatch_cross_*` are those times,
 * from the signal (before the hand-back commit, so an upper bound) to the other process's
 * session, and `dispatch_cross_claim_*` to its claim.
 *
 * @module
 */
import {
  type AgentScript,
  type FakeAgent,
  sseResponse,
  startFakeAgent,
} from "../tests/fakes/agent.ts";
import { type FakeGitHub, startFakeGitHub } from "../tests/fakes/github.ts";
import { pullRequestPayload, sha } from "../tests/harness.ts";
import { getJson, postWebhook } from "../tests/process.ts";
import { type BenchOptions, round, type Row, type SectionResult } from "./report.ts";
import { type BenchService, startBenchService } from "./servers.ts";
import { describe, percentile } from "./stats.ts";

const TRANSPORTS = ["kv-queue", "kv-table"] as const;
type Transport = typeof TRANSPORTS[number];

const TARGET_P50_MS = 5;
const TARGET_P99_MS = 25;
const CROSS_POLL_MS = 200;
const OWNER_ID = 1;

/**
 * Reviews per run. A review costs the service about 0.16 s here (a dozen GitHub calls of ~25 ms
 * each through Octokit's retry and throttling plugins), so 150 per transport would take about
 * 50 s for part 1 alone. 70 per transport, 40 across processes and 12 stopped holders (about 1 s
 * each, a process start included) keep the section near 45 s of its 60 on 2 busy cores.
 */
const PLAN = {
  full: { reviews: 70, crossReviews: 40, crossStops: 12, timeoutMs: 40_000 },
  quick: { reviews: 8, crossReviews: 6, crossStops: 2, timeoutMs: 15_000 },
};

/** A review as `GET /reviews/:id` returns it (the fields this bench reads). */
interface ReviewView {
  id: string;
  status: string;
  finishedAt?: number;
  startedAt?: number;
  createdAt: number;
}

/** One hand-off: the review before completed, the next one got its agent session. */
interface HandOff {
  /** `finishedAt` of the review before → the next review's agent session. */
  ms: number;
  /** `finishedAt` of the review before → `startedAt` of the next (its claim commit). */
  claimMs: number;
  /** The next session was opened by another process than the one that ran the review before. */
  cross: boolean;
}

/** The shared agent script: answers `done` at once, except the sessions it was told to hold. */
interface AgentGate {
  script: AgentScript;
  /** The next session to arrive (at any agent) waits for {@link AgentGate.releaseAll}. */
  holdNext(): void;
  /** Lets every held session finish. */
  releaseAll(): void;
}

/**
 * An agent script shared by every fake agent of a part, holding sessions on request.
 *
 * @example
 * ```ts
 * const gate = agentGate();
 * const agent = await startFakeAgent(gate.script);
 * gate.holdNext(); // the next session stays open ...
 * gate.releaseAll(); // ... until this
 * ```
 */
function agentGate(): AgentGate {
  // One gate per requested hold, taken by the next session in order; a gate released before its
  // session arrives simply does not hold it.
  const gates: Promise<void>[] = [];
  const releases: Array<() => void> = [];
  const script: AgentScript = () =>
    sseResponse([{ event: "done", data: {} }], { holdUntil: gates.shift() });
  return {
    script,
    holdNext() {
      gates.push(new Promise<void>((r) => releases.push(r)));
    },
    releaseAll: () => releases.splice(0).forEach((release) => release()),
  };
}

/** Fakes and processes of one part, torn down together. */
interface Rig {
  dir: string;
  github: FakeGitHub;
  gate: AgentGate;
  /** `agents[k]` serves `services[k]`, whose environment is `envs[k]`. */
  agents: FakeAgent[];
  envs: Record<string, string>[];
  services: BenchService[];
}

/** Starts the fakes and one service per entry of `envs`, all on one KV file. */
async function startRig(envs: Record<string, string>[]): Promise<Rig> {
  const dir = await Deno.makeTempDir({ prefix: "bench-dispatch-" });
  const gate = agentGate();
  const rig: Rig = { dir, github: await startFakeGitHub(), gate, agents: [], envs, services: [] };
  try {
    for (let k = 0; k < envs.length; k++) {
      // One agent per process: the agent a session reached tells which process opened it.
      rig.agents.push(await startFakeAgent(gate.script));
      rig.services.push(await startService(rig, k));
    }
    return rig;
  } catch (error) {
    await stopRig(rig);
    throw error;
  }
}

/** Starts (or starts again) process `k` of the rig with its environment and its agent. */
async function startService(rig: Rig, k: number): Promise<BenchService> {
  return await startBenchService(`${rig.dir}/kv.sqlite3`, {
    ...rig.envs[k],
    AGENT_URL: rig.agents[k].url,
    GITHUB_API_URL: rig.github.url,
    MAX_CONCURRENT_PER_OWNER: "1",
  });
}

/** Stops the processes, then the fakes, then removes the temp dir; never throws. */
async function stopRig(rig: Rig): Promise<void> {
  rig.gate.releaseAll();
  await Promise.allSettled(rig.services.map((s) => s.stop()));
  await Promise.allSettled([...rig.agents.map((a) => a.close()), rig.github.close()]);
  await Deno.remove(rig.dir, { recursive: true }).catch(() => {});
}

/** Posts the `pull_request.opened` webhook of pull request `n` to process `k`; its review id. */
async function postReview(rig: Rig, k: number, n: number): Promise<string> {
  rig.github.setPull({ owner: `owner${OWNER_ID}`, repo: "service", number: n, headSha: sha(n) });
  const payload = pullRequestPayload({ ownerId: OWNER_ID, number: n, headSha: sha(n) });
  const res = await postWebhook(rig.services[k].url, payload);
  if (res.status !== 202) {
    throw new Error(
      `dispatch bench: webhook ${n} answered ${res.status}: ${JSON.stringify(res.body)}`,
    );
  }
  return res.body.reviewId as string;
}

/**
 * Posts `count` webhooks for one owner, round-robin over the processes, one at a time so the
 * pending line is in posting order. Returns the review ids.
 */
async function postReviews(rig: Rig, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 1; n <= count; n++) ids.push(await postReview(rig, n % rig.services.length, n));
  return ids;
}

/** The review's record as the internal API of the service at `url` returns it. */
async function readReview(url: string, id: string): Promise<ReviewView> {
  return await getJson(url, `/reviews/${id}`) as ReviewView;
}

/** Polls `GET /reviews/:id` on process `k` until `completed`; a clear error after `timeoutMs`. */
async function waitCompleted(rig: Rig, k: number, id: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let status = "unknown";
  while (Date.now() < deadline) {
    status = (await readReview(rig.services[k].url, id)).status;
    if (status === "completed") return;
    // Ended otherwise: waiting longer cannot help.
    if (["failed", "cancelled", "superseded"].includes(status)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const stderr = rig.services.flatMap((s) => s.errors.slice(-3)).join(" | ") || "(empty)";
  throw new Error(
    `dispatch bench: review ${id} is ${status}, not completed, after waiting up to ` +
      `${timeoutMs} ms; service stderr: ${stderr}`,
  );
}

/** Every review's record; all must be completed, or the hand-offs would mean nothing. */
async function readCompleted(rig: Rig, ids: string[]): Promise<Map<string, ReviewView>> {
  const out = new Map<string, ReviewView>();
  for (const id of ids) {
    const review = await readReview(rig.services[0].url, id);
    if (review.status !== "completed" || review.finishedAt === undefined) {
      throw new Error(`dispatch bench: review ${id} ended ${review.status}, not completed`);
    }
    out.set(id, review);
  }
  return out;
}

/**
 * The hand-offs, from the sessions in the order they opened: with one slot, session k+1 was
 * dispatched by the completion of session k's review. Pairing by session order (not posting
 * order) stays right even if the pending line were not strictly first in, first out.
 */
function handOffs(agents: FakeAgent[], reviews: Map<string, ReviewView>): HandOff[] {
  const sessions = agents.flatMap((agent, process) =>
    agent.sessions.map((s) => ({ id: s.body.reviewId, at: s.receivedAt, process }))
  ).sort((a, b) => a.at - b.at);
  if (sessions.length !== reviews.size) {
    // A retried attempt would open a second session and break the pairing.
    throw new Error(`dispatch bench: ${sessions.length} sessions for ${reviews.size} reviews`);
  }
  return sessions.slice(1).map((next, k) => {
    const finishedAt = reviews.get(sessions[k].id)!.finishedAt!;
    return {
      ms: next.at - finishedAt,
      claimMs: reviews.get(next.id)!.startedAt! - finishedAt,
      cross: next.process !== sessions[k].process,
    };
  });
}

/**
 * Posts `count` webhooks while the first review holds the owner's one slot, then lets it go, so
 * every hand-off is measured on a service that is not also taking webhooks. Waits for the last
 * review and returns the hand-offs.
 */
async function runReviews(rig: Rig, count: number, timeoutMs: number): Promise<HandOff[]> {
  rig.gate.holdNext();
  const ids = await postReviews(rig, count);
  rig.gate.releaseAll();
  await waitCompleted(rig, 0, ids[ids.length - 1], timeoutMs);
  return handOffs(rig.agents, await readCompleted(rig, ids));
}

/** The first session for `id` at the agents `among` (default: all): its process and time. */
async function firstSession(
  rig: Rig,
  id: string,
  timeoutMs: number,
  among = rig.agents.map((_, k) => k),
): Promise<{ process: number; at: number }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const k of among) {
      const session = rig.agents[k].sessions.find((s) => s.body.reviewId === id);
      if (session) return { process: k, at: session.receivedAt };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`dispatch bench: no agent session for review ${id} within ${timeoutMs} ms`);
}

/** One forced cross hand-off, in ms from the stop signal. */
interface ForcedHandOff {
  /** To the other process's agent session. */
  ms: number;
  /** To the other process's claim (`startedAt`). */
  claimMs: number;
  /** To the stopped process's exit (its hand-back commit came before). */
  exitMs: number;
}

/**
 * One forced cross hand-off: review `n` runs (held) in one process, that process gets SIGTERM
 * and hands the review back, and the other process must claim it and open its session. Times
 * run from the signal, which comes before the hand-back commit, so they are upper bounds on
 * commit → claim and commit → session. Then the stopped process is started again.
 */
async function stopAndPickUp(
  rig: Rig,
  n: number,
  timeoutMs: number,
): Promise<ForcedHandOff> {
  rig.gate.holdNext();
  const id = await postReview(rig, n % rig.services.length, n);
  const holder = (await firstSession(rig, id, timeoutMs)).process;
  const other = 1 - holder;
  const signalledAt = Date.now();
  await rig.services[holder].stop();
  const exitMs = Date.now() - signalledAt;
  await waitCompleted(rig, other, id, timeoutMs);
  const sessionAtOther = (await firstSession(rig, id, timeoutMs, [other])).at;
  const review = await readReview(rig.services[other].url, id);
  rig.services[holder] = await startService(rig, holder);
  return {
    ms: sessionAtOther - signalledAt,
    claimMs: review.startedAt! - signalledAt,
    exitMs,
  };
}

/** Seconds since `started` (a `performance.now()`), for progress lines. */
function since(started: number): string {
  return `${((performance.now() - started) / 1000).toFixed(1)} s`;
}

/** Part 1 for one transport: one process, fast path on (the service's default). */
async function measureTransport(
  transport: Transport,
  plan: typeof PLAN.full,
  log: (line: string) => void,
): Promise<HandOff[]> {
  log(`dispatch ${transport}: one process, ${plan.reviews} reviews`);
  const started = performance.now();
  const rig = await startRig([{ QUEUE_TRANSPORT: transport, FAST_PATH: "true" }]);
  try {
    const hand = await runReviews(rig, plan.reviews, plan.timeoutMs);
    log(`dispatch ${transport}: ${describe(hand.map((h) => h.ms))} (${since(started)})`);
    log(`dispatch ${transport}, claim only: ${describe(hand.map((h) => h.claimMs))}`);
    return hand;
  } finally {
    await stopRig(rig);
  }
}

/** What part 2 saw: the hand-offs of normal operation, and the forced cross hand-offs (ms). */
interface CrossResult {
  natural: HandOff[];
  forced: ForcedHandOff[];
}

/**
 * Part 2: two processes on one KV file, `kv-table`, fast path off in both (see the module): a
 * backlog drained in normal operation, then one review at a time whose process is stopped.
 */
async function measureCross(
  plan: typeof PLAN.full,
  log: (line: string) => void,
): Promise<CrossResult> {
  log(
    `dispatch cross: two processes, poll ${CROSS_POLL_MS} ms, ${plan.crossReviews} reviews, ` +
      `then ${plan.crossStops} stopped holders`,
  );
  const env = { QUEUE_TRANSPORT: "kv-table", QUEUE_POLL_MS: String(CROSS_POLL_MS) };
  const started = performance.now();
  const rig = await startRig([{ ...env, FAST_PATH: "false" }, { ...env, FAST_PATH: "false" }]);
  try {
    const result: CrossResult = { natural: [], forced: [] };
    result.natural = await runReviews(rig, plan.crossReviews, plan.timeoutMs);
    const crossed = result.natural.filter((h) => h.cross).map((h) => h.ms);
    log(`dispatch cross: ${crossed.length} of ${result.natural.length} hand-offs crossed`);
    if (crossed.length) log(`dispatch cross, crossed in normal operation: ${describe(crossed)}`);
    for (let i = 1; i <= plan.crossStops; i++) {
      const n = plan.crossReviews + i;
      result.forced.push(await stopAndPickUp(rig, n, plan.timeoutMs));
    }
    const forced = result.forced.map((f) => f.ms);
    log(`dispatch cross, holder stopped: ${describe(forced)} (${since(started)})`);
    for (const part of ["claimMs", "exitMs"] as const) {
      const ms = result.forced.map((f) => f[part]);
      log(`dispatch cross, holder stopped, signal to ${part.slice(0, -2)}: ${describe(ms)}`);
    }
    return result;
  } finally {
    await stopRig(rig);
  }
}

/**
 * A latency row; with `target` (ms) it says whether the value is within it. No samples means
 * nothing was shown, so such a row is not ok.
 *
 * @example
 * ```ts
 * msRow("dispatch_p50_ms", 4.2, 69, 5); // { …, target: "≤ 5 ms", ok: true }
 * ```
 */
function msRow(figure: string, value: number, n: number, target?: number): Row {
  const shown = n === 0 ? "no samples" : `${value.toFixed(1)} ms (n=${n})`;
  const row: Row = { figure, value: shown };
  if (target === undefined) return row;
  return { ...row, target: `≤ ${target} ms`, ok: n > 0 && value <= target };
}

/** Adds `<name>_p50_ms` / `_p99_ms` of `ms` to `out`, with targets when given. */
function addLatency(
  out: SectionResult,
  name: string,
  ms: number[],
  targets: { p50?: number; p99?: number } = {},
): { p50: number; p99: number } {
  const p50 = percentile(ms, 50);
  const p99 = percentile(ms, 99);
  out.figures[`${name}_p50_ms`] = round(p50);
  out.figures[`${name}_p99_ms`] = round(p99);
  out.rows.push(msRow(`${name}_p50_ms`, p50, ms.length, targets.p50));
  out.rows.push(msRow(`${name}_p99_ms`, p99, ms.length, targets.p99));
  return { p50, p99 };
}

/** Part 1 into `out`: per transport, then the worse of the two as `dispatch_*`. */
async function addTransports(out: SectionResult, plan: typeof PLAN.full, options: BenchOptions) {
  const targets = { p50: TARGET_P50_MS, p99: TARGET_P99_MS };
  const worst = { p50: -Infinity, p99: -Infinity, n: 0 };
  for (const transport of TRANSPORTS) {
    const hand = await measureTransport(transport, plan, options.log);
    const name = `dispatch_${transport.replace("-", "_")}`;
    const { p50, p99 } = addLatency(out, name, hand.map((h) => h.ms), targets);
    addLatency(out, `${name}_claim`, hand.map((h) => h.claimMs));
    worst.p50 = Math.max(worst.p50, p50);
    worst.p99 = Math.max(worst.p99, p99);
    worst.n = hand.length;
  }
  out.figures.dispatch_p50_ms = round(worst.p50);
  out.figures.dispatch_p99_ms = round(worst.p99);
  out.rows.push(msRow("dispatch_p50_ms", worst.p50, worst.n, TARGET_P50_MS));
  out.rows.push(msRow("dispatch_p99_ms", worst.p99, worst.n, TARGET_P99_MS));
}

/** Part 2 into `out`: the forced cross hand-offs, and how often one crossed by itself. */
async function addCross(out: SectionResult, plan: typeof PLAN.full, options: BenchOptions) {
  const { natural, forced } = await measureCross(plan, options.log);
  const crossed = natural.filter((h) => h.cross).length;
  out.figures.queue_poll_ms = CROSS_POLL_MS;
  addLatency(out, "dispatch_cross", forced.map((f) => f.ms), { p50: CROSS_POLL_MS / 2 });
  addLatency(out, "dispatch_cross_claim", forced.map((f) => f.claimMs));
  out.figures.dispatch_cross_handoffs = crossed;
  out.figures.dispatch_cross_handoffs_total = natural.length;
  out.rows.push({
    figure: "dispatch_cross_handoffs",
    value: `${crossed} of ${natural.length} crossed in normal operation`,
  });
}

/**
 * Measures dispatch latency per transport and across two processes (see the module doc).
 *
 * @example
 * ```ts
 * const { figures, rows } = await measureDispatch({ quick: true, log: console.error });
 * console.log(figures.dispatch_p50_ms, rows.length);
 * ```
 */
export async function measureDispatch(options: BenchOptions): Promise<SectionResult> {
  const plan = options.quick ? PLAN.quick : PLAN.full;
  const out: SectionResult = { figures: {}, rows: [] };
  await addTransports(out, plan, options);
  await addCross(out, plan, options);
  return out;
}

if (import.meta.main) {
  const result = await measureDispatch({
    quick: Deno.args.includes("--quick"),
    log: (line) => console.error(line),
  });
  console.log(JSON.stringify(result, null, 2));
}
