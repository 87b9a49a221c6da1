import assert from "node:assert/strict";
import { Octokit } from "@octokit/rest";
import { applyLimits, type LimitOptions } from "./octokit_limits.ts";

const LIMITS: LimitOptions = {
  maxConcurrent: 100,
  writeIntervalMs: 0,
  retries: 2,
  retryBaseMs: 1,
  maxInlineWaitMs: 10_000,
};

/** An Octokit whose requests `answer` decides, with the limits of `limits`. */
function octokitWith(
  answer: (request: Request) => Response | Promise<Response>,
  limits: Partial<LimitOptions> = {},
) {
  const octokit = new Octokit({
    baseUrl: "http://github.invalid",
    request: { fetch: (input: string, init: RequestInit) => answer(new Request(input, init)) },
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
  applyLimits(octokit, { ...LIMITS, ...limits });
  return octokit;
}

const pull = { owner: "o", repo: "r", pull_number: 1 };
const ok = () => Response.json({ number: 1 });

Deno.test("limits: requests in flight are bounded; the others wait their turn in order", async () => {
  let inFlight = 0;
  let most = 0;
  const order: number[] = [];
  const octokit = octokitWith(async (request) => {
    inFlight++;
    most = Math.max(most, inFlight);
    order.push(Number(new URL(request.url).pathname.split("/").pop()));
    await new Promise((r) => setTimeout(r, 20));
    inFlight--;
    return ok();
  }, { maxConcurrent: 2 });
  await Promise.all(
    [1, 2, 3, 4, 5].map((n) => octokit.pulls.get({ ...pull, pull_number: n })),
  );
  assert.equal(most, 2);
  assert.deepEqual(order, [1, 2, 3, 4, 5]);
});

Deno.test("limits: writes start writeIntervalMs apart; reads are not held back", async () => {
  const starts: Array<[string, number]> = [];
  const octokit = octokitWith((request) => {
    starts.push([request.method, performance.now()]);
    return Response.json({ id: 1 }, { status: 201 });
  }, { writeIntervalMs: 100 });
  const comment = { owner: "o", repo: "r", issue_number: 1, body: "x" };
  const t0 = performance.now();
  await Promise.all([
    octokit.issues.createComment(comment),
    octokit.issues.createComment(comment),
    octokit.issues.createComment(comment),
    octokit.pulls.get(pull),
  ]);
  const posts = starts.filter(([m]) => m === "POST").map(([, at]) => at);
  assert.equal(posts.length, 3);
  for (let i = 1; i < posts.length; i++) assert.ok(posts[i] - posts[i - 1] >= 95, `${posts}`);
  const read = starts.find(([m]) => m === "GET")![1];
  assert.ok(read - t0 < 90, `the read waited ${read - t0} ms`);
});

Deno.test("limits: a short secondary rate limit is waited for once; a long one fails at once", async () => {
  const secondary = (after: string) =>
    Response.json({ message: "You have exceeded a secondary rate limit." }, {
      status: 403,
      headers: { "retry-after": after },
    });
  let answers = [secondary("1"), ok()];
  let calls = 0;
  const octokit = octokitWith(() => {
    calls++;
    return answers.shift() ?? secondary("1");
  });
  const started = Date.now();
  assert.equal((await octokit.pulls.get(pull)).status, 200);
  assert.ok(Date.now() - started >= 990, "waited for retry-after");
  assert.equal(calls, 2);

  // Twice in a row: waited once, then the limit is the caller's to handle.
  calls = 0;
  answers = [secondary("1"), secondary("1"), ok()];
  await assert.rejects(octokit.pulls.get(pull), (e: { status?: number }) => e.status === 403);
  assert.equal(calls, 2);

  calls = 0;
  answers = [secondary("60"), ok()];
  const t0 = Date.now();
  await assert.rejects(octokit.pulls.get(pull), (e: { status?: number }) => e.status === 403);
  assert.equal(calls, 1);
  assert.ok(Date.now() - t0 < 1_000);
});

Deno.test("limits: 5xx and unanswered requests are retried, n² × base apart; refusals and `retries: 0` are not", async () => {
  const answers: Array<Response | Error> = [];
  let calls = 0;
  const octokit = octokitWith(() => {
    calls++;
    const next = answers.shift() ?? ok();
    if (next instanceof Error) throw next;
    return next;
  }, { retryBaseMs: 50 });
  answers.push(new Response("down", { status: 502 }), new TypeError("connection reset"));
  const started = Date.now();
  assert.equal((await octokit.pulls.get(pull)).status, 200);
  assert.equal(calls, 3);
  assert.ok(Date.now() - started >= 50 + 200, "waited 1² and 2² × 50 ms");

  for (const status of [400, 401, 403, 404, 410, 422]) {
    calls = 0;
    answers.push(Response.json({ message: "no" }, { status }));
    await assert.rejects(octokit.pulls.get(pull), (e: { status?: number }) => e.status === status);
    assert.equal(calls, 1, `${status} is not retried`);
  }

  calls = 0;
  answers.push(new Response("down", { status: 503 }));
  await assert.rejects(octokit.pulls.get({ ...pull, request: { retries: 0 } }));
  assert.equal(calls, 1);
});

Deno.test("limits: a GraphQL answer saying RATE_LIMITED waits for the reset like a REST limit", async () => {
  const reset = `${Math.floor(Date.now() / 1000)}`;
  const answers = [
    Response.json({ data: null, errors: [{ type: "RATE_LIMITED", message: "limit" }] }, {
      headers: { "x-ratelimit-reset": reset },
    }),
    Response.json({ data: { ok: true } }),
  ];
  let calls = 0;
  const octokit = octokitWith(() => {
    calls++;
    return answers.shift()!;
  });
  assert.deepEqual(await octokit.graphql("query { ok }"), { ok: true });
  assert.equal(calls, 2);
});

Deno.test("limits: a request whose signal aborts stops waiting for its retry", async () => {
  const octokit = octokitWith(() => new Response("down", { status: 502 }), {
    retryBaseMs: 60_000,
  });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const started = Date.now();
  await assert.rejects(octokit.pulls.get({ ...pull, request: { signal: controller.signal } }));
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
});
