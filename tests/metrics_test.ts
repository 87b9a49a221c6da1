/**
 * Prometheus metrics: counters from constructed changes through `GET /metrics`, the owners'
 * gauges from a stub overview, the bearer guard, and one review through the real service.
 */
import assert from "node:assert/strict";
import { sign } from "@octokit/webhooks-methods";
import { Hono } from "hono";
import { type ChangeCause, type Changes, emptyChanges } from "../kv/changes.ts";
import { newReview, type ReviewRecord, type ReviewStatus } from "../kv/records.ts";
import { startService } from "../main.ts";
import { parseConfig } from "../review/config.ts";
import { createMetrics, type Metrics } from "../review/metrics.ts";
import type { OwnerUsage } from "../review/operations.ts";
import { metricsRoutes } from "../routes/metrics.ts";
import { sseResponse, startFakeAgent } from "./fakes/agent.ts";
import { startFakeGitHub } from "./fakes/github.ts";
import { pullRequestPayload, sha, waitFor } from "./harness.ts";

const T0 = 1_700_000_000_000;

/** An owner's slots from `"type:id"` (the stub overview's rows). */
function slots(owner: string, limit: number, active: number, pending: number): OwnerUsage {
  const [type, id] = owner.split(":") as ["org" | "user", string];
  return { owner: { type, id }, limit, customLimit: false, active, pending };
}
const STUB_OWNERS: OwnerUsage[] = [
  { ...slots("org:1", 4, 4, 6), oldestPendingMs: 30_000 },
  { ...slots("user:2", 2, 1, 2), oldestPendingMs: 10_000 },
  slots("org:3", 8, 0, 0),
];

function review(id: string, fields: Partial<ReviewRecord> = {}): ReviewRecord {
  const owner = { type: "org", id: "1" } as const;
  const base = { id, source: "webhook", owner, repo: "o/r", pullNumber: 1, createdAt: T0 } as const;
  return { ...newReview(base), ...fields };
}

/** One commit's changes holding a single review change. */
function change(record: ReviewRecord, from: ReviewStatus | null, cause?: ChangeCause): Changes {
  const changes = emptyChanges();
  changes.reviews.push({ review: record, from, cause });
  return changes;
}

/** The value of the sample written exactly as `series`, or undefined when absent. */
function sample(body: string, series: string): number | undefined {
  const line = body.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function assertSamples(body: string, expected: Record<string, number | undefined>) {
  for (const [series, value] of Object.entries(expected)) {
    assert.equal(sample(body, series), value, series);
  }
}

function setup(overview: () => Promise<OwnerUsage[]> = () => Promise.resolve(STUB_OWNERS)) {
  const metrics = createMetrics({ ownersOverview: overview, topOwners: 2 });
  let token: string | undefined = "t";
  const app = new Hono();
  app.route("/", metricsRoutes({ token: () => token, metrics }));
  const scrape = async (headers: Record<string, string> = { authorization: "Bearer t" }) => {
    const res = await app.request("/metrics", { headers });
    return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
  };
  return { metrics, app, scrape, setToken: (t: string | undefined) => token = t };
}

/** A review's whole life with one retried attempt (the brief's example), fed unbound. */
function feedLifecycle(metrics: Metrics) {
  const { observe } = metrics;
  const created = review("r1");
  observe(change(created, null));
  const queued = { ...created, status: "queued" as const, queuedAt: T0 + 1_000 };
  observe(change(queued, "pending"));
  const running = { ...queued, status: "running" as const, attempts: 1, startedAt: T0 + 5_000 };
  observe(change(running, "queued"));
  const retried = { ...running, status: "queued" as const, errorClass: "agent_error" as const };
  observe(change(retried, "running", "retry"));
  const again = { ...retried, status: "running" as const, attempts: 2, startedAt: T0 + 20_000 };
  observe(change(again, "queued"));
  const usage = { model: "m", tokensIn: 1200, tokensOut: 300, cost: 0.05 };
  const done = { ...again, status: "completed" as const, terminalReason: "completed" as const };
  observe(change({ ...done, finishedAt: T0 + 80_000, usage }, "running"));
}

Deno.test("metrics: a review's life is counted once per status, with its times and usage", async () => {
  const { metrics, scrape } = setup();
  feedLifecycle(metrics);
  metrics.webhookAnswered(202, "pull_request");
  metrics.webhookAnswered(401);
  metrics.webhookAnswered(200, "push");
  const { status, type, body } = await scrape();
  assert.equal(status, 200);
  assert.equal(type, "text/plain; version=0.0.4; charset=utf-8");
  // Each metrics object has its own registry: another one saw nothing of this.
  const other = (await setup().scrape()).body;
  assert.equal(sample(other, 'ai_review_reviews_total{status="completed"}'), 0);
  assertSamples(body, {
    'ai_review_reviews_total{status="pending"}': 1,
    'ai_review_reviews_total{status="queued"}': 2,
    'ai_review_reviews_total{status="running"}': 2,
    'ai_review_reviews_total{status="completed"}': 1,
    'ai_review_reviews_total{status="failed"}': 0,
    'ai_review_reviews_created_total{source="webhook"}': 1,
    'ai_review_reviews_ended_total{status="completed",reason="completed"}': 1,
    "ai_review_queue_wait_seconds_count": 1,
    "ai_review_queue_wait_seconds_sum": 5,
    'ai_review_queue_wait_seconds_bucket{le="5"}': 1,
    'ai_review_queue_wait_seconds_bucket{le="2"}': 0,
    'ai_review_duration_seconds_count{status="completed"}': 1,
    'ai_review_duration_seconds_sum{status="completed"}': 60,
    "ai_review_retries_total": 1,
    "ai_review_hand_backs_total": 0,
    'ai_review_errors_total{class="agent_error"}': 1,
    'ai_review_agent_tokens_total{direction="in"}': 1200,
    'ai_review_agent_tokens_total{direction="out"}': 300,
    "ai_review_agent_cost_usd_total": 0.05,
    'ai_review_webhook_responses_total{code="202",event="pull_request"}': 1,
    'ai_review_webhook_responses_total{code="401",event="other"}': 1,
    'ai_review_webhook_responses_total{code="200",event="other"}': 1,
  });
});

Deno.test("metrics: owner gauges cover the busiest owners; totals cover all", async () => {
  const { body } = await setup().scrape();
  assertSamples(body, {
    'ai_review_owner_running{owner="org:1"}': 4,
    'ai_review_owner_pending{owner="org:1"}': 6,
    'ai_review_owner_limit{owner="org:1"}': 4,
    'ai_review_owner_running{owner="user:2"}': 1,
    'ai_review_owner_limit{owner="user:2"}': 2,
    ai_review_pending: 8,
    ai_review_in_flight: 5,
    ai_review_oldest_pending_seconds: 30,
    // org:1 is at its limit: only user:2's wait is dispatch lag.
    ai_review_queue_lag_seconds: 10,
    ai_review_kv_up: 1,
  });
  assert.doesNotMatch(body, /owner="org:3"/, "topOwners is 2");
});

Deno.test("metrics: a failing overview still answers, with kv_up 0 and no totals", async () => {
  let fail = false;
  const { scrape } = setup(() =>
    fail ? Promise.reject(new Error("kv down")) : Promise.resolve(STUB_OWNERS)
  );
  assert.equal(sample((await scrape()).body, "ai_review_pending"), 8);
  fail = true;
  const { status, body } = await scrape();
  assert.equal(status, 200);
  // No sample rather than a false zero.
  assertSamples(body, { ai_review_kv_up: 0, ai_review_pending: undefined });
  assert.doesNotMatch(body, /^ai_review_(in_flight|owner_running\{)/m);
});

Deno.test("metrics: progress writes and empty changes change no counter", async () => {
  const { metrics, scrape } = setup();
  feedLifecycle(metrics);
  const before = (await scrape()).body;
  const running = review("r2", { status: "running", attempts: 1, startedAt: T0 + 1 });
  metrics.observe(change(running, "running", "progress"));
  metrics.observe(change(running, "running"));
  metrics.observe({ reviews: [], dispatched: [], aborts: [] });
  assert.equal((await scrape()).body, before);
});

Deno.test("metrics: causes are counted; a restart after hand-back or deferral is no first wait", async () => {
  const { metrics: { observe }, scrape } = setup();
  const running = review("r3", { status: "running", attempts: 1, startedAt: T0 + 2_000 });
  observe(change(running, "queued"));
  const handed = { ...running, status: "queued" as const, attempts: 0, handBacks: 1 };
  observe(change(handed, "running", "hand_back"));
  observe(change({ ...handed, status: "running", attempts: 1, startedAt: T0 + 9_000 }, "queued"));
  const deferred = review("r4", { status: "queued", attempts: 0, deferrals: 1 });
  observe(change(deferred, "running", "deferral"));
  observe(change({ ...deferred, status: "running", attempts: 1, startedAt: T0 + 3 }, "queued"));
  // The sweeper dispatching an overdue queued review again: no status change, still a repair.
  observe(change(review("r5", { status: "queued" }), "queued", "repair"));
  observe(change(review("r6", { status: "queued", attempts: 1 }), "running", "repair"));
  // A retry without a recorded class, and a review that fails before it ever ran.
  observe(change(review("r7", { status: "queued", attempts: 1 }), "running", "retry"));
  const failed = review("r8", { status: "failed", terminalReason: "github_error" });
  observe(change({ ...failed, finishedAt: T0 + 4_000 }, "pending"));
  const { body } = await scrape();
  assertSamples(body, {
    "ai_review_queue_wait_seconds_count": 1,
    "ai_review_queue_wait_seconds_sum": 2,
    "ai_review_hand_backs_total": 1,
    "ai_review_deferrals_total": 1,
    "ai_review_sweeper_repairs_total": 2,
    "ai_review_retries_total": 1,
    'ai_review_errors_total{class="unknown"}': 1,
    'ai_review_errors_total{class="github_error"}': 1,
    'ai_review_reviews_ended_total{status="failed",reason="github_error"}': 1,
    // Never started: counted from creation.
    'ai_review_duration_seconds_sum{status="failed"}': 4,
    'ai_review_reviews_total{status="queued"}': 4,
  });
});

Deno.test("metrics: the route wants the bearer token, and 503 without one configured", async () => {
  const { scrape, setToken } = setup();
  assert.equal((await scrape({})).status, 401);
  assert.equal((await scrape({ authorization: "Bearer wrong" })).status, 401);
  assert.equal((await scrape()).status, 200);
  setToken(undefined);
  assert.equal((await scrape()).status, 503);
});

Deno.test("metrics: a webhook through the real service shows up as a completed review", async () => {
  const kv = await Deno.openKv(":memory:");
  const github = await startFakeGitHub();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const frames = [{ event: "summary", data: { text: "ok" } }, { event: "done", data: {} }];
  const agent = await startFakeAgent(() => sseResponse(frames, { holdUntil: gate }));
  let handler = (_: Request): Response | Promise<Response> => new Response(null, { status: 503 });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (r) => handler(r));
  const url = `http://127.0.0.1:${server.addr.port}`;
  const config = parseConfig({
    PUBLIC_URL: url,
    GITHUB_WEBHOOK_SECRET: "secret",
    GITHUB_TOKEN: "test-github-token",
    GITHUB_API_URL: github.url,
    AGENT_URL: agent.url,
    BACKEND_AUTH_TOKEN: "backend",
    QUEUE_TRANSPORT: "kv-queue",
  });
  // The service as main.ts wires it: metrics observe every change and count webhook answers.
  const service = await startService({ config, kv, log: () => {} });
  handler = service.app.fetch;
  /** The scrape once `series` reads `value`. */
  const until = (series: string, value: number) =>
    waitFor(`${series} to be ${value}`, async () => {
      const res = await fetch(`${url}/metrics`, { headers: { authorization: "Bearer backend" } });
      const body = await res.text();
      return sample(body, series) === value ? body : undefined;
    });
  try {
    github.setPull({ owner: "owner101", repo: "service", number: 7, headSha: sha(7) });
    const raw = JSON.stringify(pullRequestPayload({ ownerId: 101, number: 7, headSha: sha(7) }));
    const signature = await sign("secret", raw);
    const headers = { "x-github-event": "pull_request", "x-hub-signature-256": signature };
    const res = await fetch(`${url}/webhooks/github`, { method: "POST", headers, body: raw });
    assert.equal(res.status, 202);
    await res.body?.cancel();
    // While the agent holds the session, the owner's slot shows as running.
    const during = await until('ai_review_owner_running{owner="org:101"}', 1);
    assertSamples(during, { ai_review_in_flight: 1, ai_review_kv_up: 1 });
    release();
    const body = await until('ai_review_reviews_total{status="completed"}', 1);
    assertSamples(body, {
      'ai_review_reviews_created_total{source="webhook"}': 1,
      'ai_review_reviews_total{status="running"}': 1,
      'ai_review_reviews_ended_total{status="completed",reason="completed"}': 1,
      "ai_review_queue_wait_seconds_count": 1,
      'ai_review_duration_seconds_count{status="completed"}': 1,
      'ai_review_webhook_responses_total{code="202",event="pull_request"}': 1,
      ai_review_in_flight: 0,
    });
  } finally {
    release();
    await service.stop(2_000);
    await server.shutdown();
    kv.close();
    await service.listening;
    await agent.close();
    await github.close();
  }
});
