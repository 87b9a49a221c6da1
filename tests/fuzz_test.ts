/**
 * Fuzz suite for every edge where outside bytes enter the service: GitHub webhooks and
 * `POST /review` through the real HTTP server, the agent's SSE stream, GitHub diffs and webhook
 * classification. It proves that no input gets a 5xx or crashes the server; that a refused or
 * ignored request leaves KV untouched; that an agent stream of any bytes ends the session with a
 * result or a `ReviewError` within its timeouts, reading a bounded amount of an endless line; and
 * that diff parsing and cutting never throw, a cut being a line-aligned prefix within its bound.
 *
 * Seeds are fixed (`FUZZ_SEED=<n>` moves them); each property prints the inputs it tried.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { CreateReviewBodySchema } from "../review/api_request.ts";
import { runAgentSession } from "./sse_session.ts";
import type { AgentSessionRequest } from "../review/agent_events.ts";
import { AttemptAborted, ReviewError } from "../review/errors.ts";
import { filesFromDiff, truncateDiff } from "../review/diff.ts";
import { classifyWebhook, TRIGGER_ACTIONS } from "../review/webhook_payload.ts";
import {
  apiBody,
  type ApiCase,
  apiCase,
  applyEdits,
  badlySigned,
  type Delivery,
  deliveryBody,
  diffEdits,
  diffFiles,
  diffishString,
  diffText,
  mutatedPullRequest,
  randomDelivery,
  sseBytes,
  type SseCase,
  sseCase,
} from "./fuzz_inputs.ts";
import { BACKEND_TOKEN, type Harness, startHarness, WEBHOOK_SECRET } from "./harness.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? "20250611");
const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Checks a property from a fixed seed for at most `numRuns` inputs or `timeLimitMs` (shrinking
 * included), prints one line with the inputs tried, and throws fast-check's report on failure.
 */
async function holds<T>(
  name: string,
  seedOffset: number,
  property: fc.IAsyncProperty<T> | fc.IProperty<T>,
  numRuns: number,
  timeLimitMs: number,
  outcomes?: Map<string | number, number>,
): Promise<void> {
  const seed = SEED + seedOffset;
  const details = await fc.check(property as fc.IAsyncProperty<T>, {
    seed,
    numRuns,
    plugins: [fc.interruptAfterTimeLimit(timeLimitMs)],
  });
  const outcome = details.failed ? `FAILED (shrunk ${details.numShrinks} times)` : "ok";
  const tally = outcomes
    ? ` (${
      [...outcomes].sort(([a], [b]) => String(a).localeCompare(String(b)))
        .map(([s, n]) => `${s}×${n}`).join(", ")
    })`
    : "";
  console.log(`fuzz: ${name}: ${details.numRuns} inputs tried${tally}, seed ${seed}: ${outcome}`);
  if (!details.failed) return;
  const error = details.errorInstance instanceof Error
    ? details.errorInstance.message
    : String(details.errorInstance);
  throw new Error(`${name}\n${fc.defaultReportMessage(details)}\nError: ${error}`);
}

// ---------------------------------------------------------------------------------------------
// The server: KV traces and the expected answers

/** Key prefixes a refused or ignored request must leave as they were (`["health"]` may change). */
const WATCHED = ["reviews", "pending", "owners", "reviews_by_delivery"];

async function kvTrace(kv: Deno.Kv): Promise<Map<string, string>> {
  const trace = new Map<string, string>();
  for (const prefix of WATCHED) {
    for await (const e of kv.list({ prefix: [prefix] })) {
      trace.set(JSON.stringify(e.key), e.versionstamp);
    }
  }
  return trace;
}

function traceChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  const changes: string[] = [];
  for (const [key, stamp] of after) {
    if (!before.has(key)) changes.push(`added ${key}`);
    else if (before.get(key) !== stamp) changes.push(`rewrote ${key}`);
  }
  for (const key of before.keys()) if (!after.has(key)) changes.push(`deleted ${key}`);
  return changes;
}

const TERMINAL = ["completed", "failed", "cancelled"];
/** Reviews found unfinished long after they were accepted (reported once, then not waited on). */
const stuck = new Set<string>();

/**
 * Waits until review `id` has ended and no other review holds a slot or waits for one, so no
 * background work writes while the next request is checked. The fake GitHub knows none of the
 * fuzzed pull requests, so every accepted review fails fast. Answers `id`'s last status.
 */
async function quiesce(h: Harness, id: string, timeoutMs = 5_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const statusOf = async () =>
    (await h.kv.get<{ status: string }>(["reviews", id])).value?.status ?? "missing";
  const busy = async (prefix: string) => {
    for await (const e of h.kv.list({ prefix: [prefix] })) {
      if (!stuck.has(String(e.key[e.key.length - 1]))) return true;
    }
    return false;
  };
  while (Date.now() < deadline) {
    if (
      TERMINAL.includes(await statusOf()) && !(await busy("inflight")) && !(await busy("pending"))
    ) return await statusOf();
    await sleep(5);
  }
  const status = await statusOf();
  if (!TERMINAL.includes(status)) stuck.add(id);
  return status;
}

/** What the server logged as request failures since `from` (the cause of a 500). */
function serverErrors(h: Harness, from: number): string {
  return h.logs.slice(from).filter((l) => l.level === "error")
    .map((l) => `${l.message}: ${String(l.context?.error ?? "").split("\n")[0]}`).join("; ");
}

/** Sends a request, then checks the answer and the KV trace it left. */
async function exchange(
  h: Harness,
  request: Request,
  expected: readonly number[],
  answers?: Map<string | number, number>,
): Promise<void> {
  const logFrom = h.logs.length;
  const before = await kvTrace(h.kv);
  const res = await fetch(request);
  const text = await res.text();
  answers?.set(res.status, (answers.get(res.status) ?? 0) + 1);
  const context = () =>
    `answer ${res.status} ${text.slice(0, 300)}${
      serverErrors(h, logFrom) ? `; server log: ${serverErrors(h, logFrom)}` : ""
    }`;
  assert.ok(res.status < 500, `a 5xx: ${context()}`);
  assert.ok([200, 202, 400, 401, 413].includes(res.status), `unexpected status: ${context()}`);
  assert.ok(expected.includes(res.status), `expected ${expected.join("|")}: ${context()}`);
  if (res.status === 202) {
    const id = (JSON.parse(text) as { reviewId?: unknown }).reviewId;
    assert.equal(typeof id, "string", context());
    assert.ok((await h.kv.get(["reviews", id as string])).value, `202 but no review: ${context()}`);
    if (stuck.has(id as string)) return;
    const status = await quiesce(h, id as string);
    assert.ok(
      TERMINAL.includes(status),
      `review accepted but still ${status} after 5 s (a review of an unknown PR fails at once); ` +
        context(),
    );
  } else {
    const changes = traceChanges(before, await kvTrace(h.kv));
    assert.deepEqual(changes.slice(0, 5), [], `a ${res.status} wrote to KV: ${context()}`);
  }
}

/** `sha256=<hex HMAC>` of the UTF-8 text, as GitHub signs (an empty body included). */
async function sign(secret: string, text: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(text)));
  return `sha256=${Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function signatureFor(signing: Delivery["signing"], raw: string): Promise<string | null> {
  const valid = () => sign(WEBHOOK_SECRET, raw);
  switch (signing.kind) {
    case "valid":
      return await valid();
    case "none":
      return null;
    case "empty":
      return "";
    case "otherSecret":
      return await sign(signing.secret || "another-secret", raw);
    case "otherBody":
      return await sign(WEBHOOK_SECRET, `${raw} `);
    case "zeros":
      return `sha256=${"0".repeat(64)}`;
    case "sha1":
      return (await valid()).replace("sha256=", "sha1=");
    case "truncated":
      return (await valid()).slice(0, signing.keep);
    case "flipped": {
      const sig = await valid();
      const i = 7 + signing.at;
      return sig.slice(0, i) + (sig[i] === "0" ? "1" : "0") + sig.slice(i + 1);
    }
    case "header":
      return signing.value;
  }
}

/** The answers a correctly signed delivery may get, from the body the server will parse. */
function signedAnswers(event: string, raw: string): number[] {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return [400];
  }
  const decision = classifyWebhook(event, body);
  if (decision.kind === "ignore" || decision.kind === "close") return [200];
  if (decision.kind === "invalid") return [400];
  // A review, unless the route bounds what the schema lets through.
  return [202, 400];
}

/**
 * Sends a delivery. A wrongly signed one must get 401. A correctly signed one gets any answer the
 * route has but 5xx, or with `exact`, the one its body calls for (never 401).
 */
async function deliver(
  h: Harness,
  d: Delivery,
  answers: Map<string | number, number>,
  exact = false,
): Promise<void> {
  const raw = deliveryBody(d.body);
  const headers = new Headers();
  if (d.contentType !== null) headers.set("content-type", d.contentType);
  if (d.event !== null) headers.set("x-github-event", d.event);
  if (d.deliveryId !== null) {
    headers.set("x-github-delivery", d.deliveryId === "fresh" ? crypto.randomUUID() : d.deliveryId);
  }
  const signature = await signatureFor(d.signing, raw);
  if (signature !== null) headers.set("x-hub-signature-256", signature);
  const expected = d.signing.kind !== "valid"
    ? [401]
    : exact
    ? signedAnswers(headers.get("x-github-event") ?? "", raw)
    : [200, 202, 400, 401, 413];
  const body = d.contentType === null ? encoder.encode(raw) : raw;
  await exchange(
    h,
    new Request(`${h.url}/webhooks/github`, { method: "POST", headers, body }),
    expected,
    answers,
  );
}

/** A chunk of spaces, the filler of large bodies. */
const FILLER = new Uint8Array(64 * 1024).fill(0x20);

/**
 * Posts `size` bytes streamed without a length (chunked); answers the status and how many bytes
 * the client had handed over when the answer came.
 */
async function postChunked(url: string, headers: Record<string, string>, size: number) {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulled >= size) return c.close();
      const next = FILLER.slice(0, Math.min(FILLER.length, size - pulled));
      pulled += next.length;
      c.enqueue(next);
    },
  }, { highWaterMark: 0 });
  const aborter = new AbortController();
  const res = await fetch(url, { method: "POST", headers, body, signal: aborter.signal });
  const sent = pulled;
  await res.body?.cancel();
  aborter.abort();
  return { status: res.status, sent };
}

/**
 * Posts `size` bytes with a `Content-Length` over a raw connection, writing until the answer
 * comes; answers the status and how many body bytes the server had taken by then.
 */
async function postWithLength(url: string, headers: Record<string, string>, size: number) {
  const { hostname, port, pathname } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const head = [
    `POST ${pathname} HTTP/1.1`,
    `host: ${hostname}:${port}`,
    `content-length: ${size}`,
    "connection: close",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ].join("\r\n");
  let sent = 0;
  let answered = false;
  const writing = (async () => {
    const bytes = encoder.encode(head);
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    while (sent < size && !answered) {
      sent += await conn.write(FILLER.subarray(0, Math.min(FILLER.length, size - sent)));
    }
  })().catch(() => {}); // the server may close the connection once it has answered
  const buffer = new Uint8Array(1024);
  const n = await conn.read(buffer);
  answered = true;
  const sentAtAnswer = sent;
  conn.close();
  await writing;
  const statusLine = new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split("\r\n")[0];
  return { status: Number(statusLine.split(" ")[1]), sent: sentAtAnswer };
}

Deno.test("webhooks: no delivery, however malformed or forged, gets a 5xx, and a refused one stores nothing", async (t) => {
  const h = await startHarness();
  const answers = {
    mutated: new Map<string | number, number>(),
    random: new Map<string | number, number>(),
    exact: new Map<string | number, number>(),
    forged: new Map<string | number, number>(),
  };
  try {
    await t.step("signed pull_request payloads with mutated fields", () =>
      holds(
        "webhook: signed mutated pull_request payloads",
        1,
        fc.asyncProperty(mutatedPullRequest, (d) => deliver(h, d, answers.mutated)),
        300,
        6_000,
        answers.mutated,
      ));
    await t.step("signed deliveries of any event, action, JSON value or non-JSON text", () =>
      holds(
        "webhook: signed random events, actions and bodies",
        2,
        fc.asyncProperty(randomDelivery, (d) => deliver(h, d, answers.random)),
        150,
        2_500,
        answers.random,
      ));
    await t.step("a correctly signed delivery gets the answer its body calls for", () =>
      holds(
        "webhook: signed deliveries answered as the README says",
        10,
        fc.asyncProperty(
          fc.oneof(mutatedPullRequest, randomDelivery),
          (d) => deliver(h, d, answers.exact, true),
        ),
        150,
        2_500,
        answers.exact,
      ));
    await t.step(
      "triggering payloads unsigned, wrongly signed or with missing headers",
      () =>
        holds(
          "webhook: unsigned and wrongly signed deliveries",
          3,
          fc.asyncProperty(badlySigned, (d) => deliver(h, d, answers.forged)),
          100,
          2_000,
          answers.forged,
        ),
    );

    await t.step(
      "a body without a well-formed signature is refused before it is read",
      async () => {
        const size = 24 * 1024 * 1024;
        const failures: string[] = [];
        let tried = 0;
        for (const framing of ["chunked", "content-length"] as const) {
          for (const signature of [null, "not-a-signature"]) {
            tried++;
            const headers: Record<string, string> = {
              "content-type": "application/json",
              "x-github-event": "pull_request",
            };
            if (signature) headers["x-hub-signature-256"] = signature;
            const before = await kvTrace(h.kv);
            const { status, sent } = framing === "chunked"
              ? await postChunked(`${h.url}/webhooks/github`, headers, size)
              : await postWithLength(`${h.url}/webhooks/github`, headers, size);
            const changes = traceChanges(before, await kvTrace(h.kv));
            const what = `${framing} body, signature ${JSON.stringify(signature)}`;
            if (status !== 401) failures.push(`${what}: answered ${status}, not 401`);
            if (changes.length) failures.push(`${what}: wrote ${changes.join(", ")}`);
            if (sent > 8 * 1024 * 1024) {
              failures.push(`${what}: ${sent} of ${size} bytes were read before the ${status}`);
            }
          }
        }
        console.log(
          `fuzz: webhook: 24 MiB bodies without a usable signature: ${tried} inputs tried`,
        );
        assert.deepEqual(failures, []);
      },
    );

    await t.step("a signed body over 25 MiB is refused with 413 and stores nothing", async () => {
      const limit = 25 * 1024 * 1024;
      const payload = JSON.stringify({ action: "opened", pad: "x".repeat(limit) });
      const signature = await sign(WEBHOOK_SECRET, payload);
      const headers = {
        "content-type": "application/json",
        "x-github-event": "pull_request",
        "x-hub-signature-256": signature,
      };
      // With a Content-Length, and streamed without one.
      await exchange(
        h,
        new Request(`${h.url}/webhooks/github`, { method: "POST", headers, body: payload }),
        [413],
      );
      const before = await kvTrace(h.kv);
      const streamed = await postChunked(`${h.url}/webhooks/github`, headers, limit + 1024 * 1024);
      assert.equal(streamed.status, 413, "a streamed body over 25 MiB");
      assert.deepEqual(traceChanges(before, await kvTrace(h.kv)), []);
      console.log("fuzz: webhook: signed bodies over 25 MiB: 2 inputs tried");
    });
    await t.step("the server still answers /health", async () => {
      const res = await fetch(`${h.url}/health`);
      assert.equal(res.status, 200, await res.text());
    });
  } finally {
    await h.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The internal API

async function postReview(
  h: Harness,
  c: ApiCase,
  answers: Map<string | number, number>,
): Promise<void> {
  const raw = apiBody(c.body);
  const headers: Record<string, string> = { "content-type": "application/json" };
  const authorized = c.auth === "valid" || c.auth === "lowercase";
  if (c.auth === "valid") headers.authorization = `Bearer ${BACKEND_TOKEN}`;
  if (c.auth === "lowercase") headers.authorization = `bearer ${BACKEND_TOKEN}`;
  if (c.auth === "wrong") headers.authorization = "Bearer not-the-token";
  if (c.auth === "basic") headers.authorization = `Basic ${btoa(`u:${BACKEND_TOKEN}`)}`;
  if (c.auth === "empty") headers.authorization = "Bearer ";
  let expected = [401];
  if (authorized) {
    let value: unknown = {};
    try {
      value = raw.trim() === "" ? {} : JSON.parse(raw);
    } catch {
      value = undefined;
    }
    const valid = value !== undefined && CreateReviewBodySchema.safeParse(value).success;
    expected = valid ? [202, 400] : [400];
  }
  await exchange(
    h,
    new Request(`${h.url}/review`, { method: "POST", headers, body: raw }),
    expected,
    answers,
  );
}

Deno.test("internal API: no POST /review body gets a 5xx, and a refused one stores nothing", async () => {
  const h = await startHarness();
  const answers = new Map<string | number, number>();
  try {
    await holds(
      "api: POST /review with mutated bodies and bearers",
      4,
      fc.asyncProperty(apiCase, (c) => postReview(h, c, answers)),
      300,
      5_000,
      answers,
    );
    const health = await fetch(`${h.url}/health`);
    assert.equal(health.status, 200, await health.text());
  } finally {
    await h.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The agent stream

const REQUEST: AgentSessionRequest = {
  reviewId: "fuzz-1",
  attempt: 1,
  repo: "octo/app",
  pullNumber: 1,
  headSha: "a".repeat(40),
  baseSha: "b".repeat(40),
  title: "Fuzz",
  diff: "diff --git a/x b/x\n",
  files: ["x"],
};

/** Grace beyond a session's total timeout for timers and GC on a busy machine. */
const SLACK_MS = 1_500;

interface BodyStats {
  bodies: number;
  pulled: number;
  closed: boolean;
  cancelled: boolean;
  errored: boolean;
}

/** A response body that serves `bytes` in the case's chunks, then closes, fails or hangs. */
function caseBody(bytes: Uint8Array, c: SseCase, signal: AbortSignal | undefined, s: BodyStats) {
  s.bodies++;
  let at = 0;
  let reads = 0;
  const released = () => s.closed || s.cancelled || s.errored;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      // As fetch does: aborting the request fails the body being read.
      signal?.addEventListener("abort", () => {
        if (released()) return;
        s.errored = true;
        controller.error(signal.reason);
      }, { once: true });
    },
    async pull(controller) {
      if (++reads % c.yieldEvery === 0) await sleep(0);
      if (released()) return;
      if (at < bytes.length) {
        const size = Math.max(bytes.length > 50_000 ? 4_096 : 1, c.chunks[reads % c.chunks.length]);
        const chunk = bytes.slice(at, at + size);
        at += chunk.length;
        s.pulled += chunk.length;
        controller.enqueue(chunk);
      } else if (c.ending === "close") {
        s.closed = true;
        controller.close();
      } else if (c.ending === "error") {
        s.errored = true;
        controller.error(new TypeError("error reading a body from connection: connection reset"));
      } // "hang": nothing more, ever.
    },
    cancel() {
      s.cancelled = true;
    },
  }, { highWaterMark: 0 });
}

function caseFetch(c: SseCase, bytes: Uint8Array, stats: BodyStats): typeof fetch {
  return (_input: string | URL | Request, init?: RequestInit) => {
    const signal = init?.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const a = c.answer;
    if (a.kind === "refused") {
      return Promise.reject(new TypeError("error sending request: connection refused"));
    }
    if (a.kind === "hangs") {
      return new Promise<Response>((_, reject) =>
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true })
      );
    }
    if (a.kind === "noBody") {
      return Promise.resolve(
        new Response(null, { headers: { "content-type": "text/event-stream" } }),
      );
    }
    const payload = a.kind === "http" ? encoder.encode(a.body) : bytes;
    const headers = new Headers();
    if (a.contentType) headers.set("content-type", a.contentType);
    if (a.kind === "sse" && a.sessionId) headers.set("x-session-id", a.sessionId);
    return Promise.resolve(
      new Response(caseBody(payload, c, signal, stats), {
        status: a.kind === "http" ? a.status : 200,
        headers,
      }),
    );
  };
}

const describe = (error: unknown) =>
  `${(error as Error)?.constructor?.name ?? typeof error}: ${String(error)}`;

/** How the random sessions ended, for the summary line. */
const sessionOutcomes = new Map<string | number, number>();

async function sessionSettles(c: SseCase): Promise<void> {
  const bytes = sseBytes(c);
  const stats: BodyStats = {
    bodies: 0,
    pulled: 0,
    closed: false,
    cancelled: false,
    errored: false,
  };
  const external = new AbortController();
  const reason = new AttemptAborted("shutdown");
  const timer = c.abortAfterMs === null
    ? undefined
    : setTimeout(() => external.abort(reason), c.abortAfterMs);
  const started = performance.now();
  let outcome: { ok: true; findings: number } | { ok: false; error: unknown };
  try {
    const result = await runAgentSession(REQUEST, {
      agentUrl: "http://agent.invalid/",
      token: "t",
      fetch: caseFetch(c, bytes, stats),
      signal: c.abortAfterMs === null ? undefined : external.signal,
      idleTimeoutMs: c.idleTimeoutMs,
      totalTimeoutMs: c.totalTimeoutMs,
      maxEventBytes: c.maxEventBytes,
      maxFindings: c.maxFindings,
      onEvent: c.onEventThrows ? () => void JSON.parse("{broken callback") : undefined,
      log: () => {},
    });
    outcome = { ok: true, findings: result.findings.length };
  } catch (error) {
    outcome = { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
  const elapsed = performance.now() - started;
  const kind = outcome.ok
    ? "result"
    : outcome.error instanceof ReviewError
    ? `${outcome.error.reason}/${outcome.error.retryable ? "retryable" : "final"}`
    : outcome.error === reason
    ? "aborted"
    : "other";
  sessionOutcomes.set(kind, (sessionOutcomes.get(kind) ?? 0) + 1);
  assert.ok(
    elapsed <= c.totalTimeoutMs + SLACK_MS,
    `settled after ${Math.round(elapsed)} ms (total timeout ${c.totalTimeoutMs} ms)`,
  );
  if (outcome.ok) {
    assert.equal(c.answer.kind, "sse", "a result from an answer that is not an SSE stream");
    assert.ok(new TextDecoder().decode(bytes).includes("done"), "a result without a done event");
    assert.ok(outcome.findings <= (c.maxFindings ?? 2000), "more findings than maxFindings");
  } else {
    assert.ok(
      outcome.error instanceof ReviewError || outcome.error === reason,
      `rejected with ${describe(outcome.error)}`,
    );
  }
  if (stats.bodies > 0) {
    assert.ok(stats.closed || stats.cancelled || stats.errored, "the response body was left open");
  }
}

Deno.test("agent stream: any bytes end the session with a result or a ReviewError, within its timeouts", async () => {
  await holds(
    "agent: random SSE streams",
    5,
    fc.asyncProperty(sseCase, sessionSettles),
    250,
    4_000,
    sessionOutcomes,
  );
  await sleep(20); // the last stream's pending pull timer
});

Deno.test("agent stream: an endless line is refused after reading a bounded amount", async (t) => {
  const MiB = 1024 * 1024;
  /** Streams `head`, then `unit` repeated in 64 KiB chunks up to `total` bytes, then `ending`. */
  function endless(head: string, unit: string, total: number, ending: "close" | "hang") {
    const chunk = encoder.encode(unit.repeat(Math.ceil(64 * 1024 / unit.length)));
    const counter = { pulled: 0, reads: 0 };
    const fetchFake: typeof fetch = (_input, init) => {
      const signal = init?.signal ?? undefined;
      let sentHead = false;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          signal?.addEventListener("abort", () => {
            try {
              controller.error(signal.reason);
            } catch { /* already closed */ }
          }, { once: true });
        },
        async pull(controller) {
          // A network read yields to timers now and then; so does this one.
          if (++counter.reads % 16 === 0) await sleep(0);
          if (!sentHead) {
            sentHead = true;
            return controller.enqueue(encoder.encode(head));
          }
          if (counter.pulled >= total) {
            if (ending === "close") controller.close();
            return;
          }
          counter.pulled += chunk.length;
          controller.enqueue(chunk.slice());
        },
      }, { highWaterMark: 0 });
      return Promise.resolve(
        new Response(body, { headers: { "content-type": "text/event-stream" } }),
      );
    };
    return { fetchFake, counter };
  }
  const cases: Array<{
    name: string;
    head: string;
    unit: string;
    total: number;
    ending: "close" | "hang";
  }> = [
    { name: "a 50 MB data line", head: "event: finding\ndata: ", unit: "a", total: 50 * MiB },
    { name: "50 MB of data lines never ended by a blank line", head: "", unit: "data: x\n" },
    { name: "a 50 MB event: line", head: "event: ", unit: "e", total: 50 * MiB },
    { name: "a 50 MB id: line", head: "id: ", unit: "7", total: 50 * MiB },
    { name: "a 5 MB data line, then the stream ends", head: "data: ", unit: "é", total: 5 * MiB },
    { name: "a 5 MB data line, then silence", head: "data: ", unit: "é", total: 5 * MiB },
  ].map((c) => ({
    total: 50 * MiB,
    ending: c.name.endsWith("stream ends") ? "close" as const : "hang" as const,
    ...c,
  }));
  const read: string[] = [];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const { fetchFake, counter } = endless(c.head, c.unit, c.total, c.ending);
      const started = performance.now();
      const error = await runAgentSession(REQUEST, {
        agentUrl: "http://agent.invalid",
        fetch: fetchFake,
        idleTimeoutMs: 2_000,
        totalTimeoutMs: 10_000,
        log: () => {},
      }).then(() => undefined, (e: unknown) => e);
      const elapsed = Math.round(performance.now() - started);
      read.push(`${c.name}: ${counter.pulled} bytes read`);
      assert.ok(error instanceof ReviewError, `settled with ${describe(error)}`);
      assert.ok(
        counter.pulled <= 4 * MiB,
        `read ${counter.pulled} bytes (${elapsed} ms) before failing with: ${error.message}`,
      );
      assert.equal(error.retryable, false, error.message);
      assert.match(error.message, /exceeds/);
    });
  }
  await sleep(20);
  console.log(`fuzz: agent: endless lines: ${cases.length} inputs tried (${read.join("; ")})`);
});

Deno.test("agent stream: a 50 MB line that is no SSE field is skipped, and the session still ends in time", async () => {
  let pulled = 0;
  let reads = 0;
  const chunk = encoder.encode("z".repeat(64 * 1024));
  const fetchFake: typeof fetch = (_input, init) => {
    const signal = init?.signal ?? undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        signal?.addEventListener("abort", () => {
          try {
            controller.error(signal.reason);
          } catch { /* already closed */ }
        }, { once: true });
      },
      async pull(controller) {
        if (++reads % 16 === 0) await sleep(0);
        if (pulled >= 50 * 1024 * 1024) return;
        pulled += chunk.length;
        controller.enqueue(chunk.slice());
      },
    }, { highWaterMark: 0 });
    return Promise.resolve(
      new Response(body, { headers: { "content-type": "text/event-stream" } }),
    );
  };
  const started = performance.now();
  const error = await runAgentSession(REQUEST, {
    agentUrl: "http://agent.invalid",
    fetch: fetchFake,
    idleTimeoutMs: 200,
    totalTimeoutMs: 1_000,
    log: () => {},
  }).then(() => undefined, (e: unknown) => e);
  const elapsed = performance.now() - started;
  assert.ok(error instanceof ReviewError, `settled with ${describe(error)}`);
  assert.ok(elapsed <= 1_000 + SLACK_MS, `settled after ${Math.round(elapsed)} ms`);
  await sleep(20);
  console.log(
    `fuzz: agent: endless junk line: 1 input tried (${pulled} bytes skipped, then: ` +
      `${(error as Error).message})`,
  );
});

// ---------------------------------------------------------------------------------------------
// Diffs

const utf8 = (text: string) => encoder.encode(text).length;

Deno.test("diffs: file lists and cuts never throw; a cut is a line-aligned prefix within the byte bound", async (t) => {
  const generated = fc.record({ files: diffFiles, crlf: fc.boolean() });
  const anyText = fc.oneof(
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
    diffishString,
    fc.record({ g: generated, edits: diffEdits }).map(({ g, edits }) =>
      applyEdits(diffText(g.files, g.crlf), edits)
    ),
  );

  await t.step("filesFromDiff on random and mutated text", () =>
    holds(
      "diff: filesFromDiff never throws, paths unique and non-empty",
      6,
      fc.property(anyText, (text) => {
        const files = filesFromDiff(text);
        assert.ok(Array.isArray(files));
        assert.equal(new Set(files).size, files.length, "a path listed twice");
        for (const f of files) assert.ok(typeof f === "string" && f.length > 0, "an empty path");
      }),
      1_500,
      2_000,
    ));

  await t.step("filesFromDiff gives the new path of every file of a git diff", () =>
    holds(
      "diff: filesFromDiff round-trips git-quoted paths",
      7,
      fc.property(generated, ({ files, crlf }) => {
        assert.deepEqual(filesFromDiff(diffText(files, crlf)), [
          ...new Set(files.map((f) => f.to)),
        ]);
      }),
      1_000,
      2_000,
    ));

  await t.step("truncateDiff on random and mutated text and bounds", () =>
    holds(
      "diff: truncateDiff is a line-aligned prefix of at most n bytes",
      8,
      fc.property(
        anyText,
        fc.oneof(fc.integer({ min: -3, max: 400 }), fc.integer({ min: -3, max: 3_000 })),
        (text, n) => {
          const { diff, truncated } = truncateDiff(text, n);
          // Diffs are decoded bytes, so always well-formed; others must only not throw.
          if (!text.isWellFormed()) return;
          const bound = Math.max(0, n);
          assert.ok(utf8(diff) <= bound, `${utf8(diff)} bytes for a bound of ${n}`);
          assert.ok(text.startsWith(diff), "not a prefix");
          assert.equal(truncated, utf8(text) > bound);
          if (!truncated) return assert.equal(diff, text);
          assert.ok(diff === "" || diff.endsWith("\n"), "cut inside a line");
          const nextLine = text.indexOf("\n", diff.length);
          assert.ok(
            nextLine === -1 || utf8(text.slice(0, nextLine + 1)) > bound,
            "cut earlier than the last line that fits",
          );
        },
      ),
      1_500,
      2_000,
    ));

  await t.step("large adversarial diffs are handled in linear time", () => {
    const big = [
      'diff --git "a/x" "b/x'.repeat(50_000),
      `diff --git a/${" b/".repeat(100_000)}\n`.repeat(3),
      `diff --git ${'"a/\\"'.repeat(50_000)} b/y\n`,
      "diff --git a/x b/x\r\n".repeat(50_000),
    ];
    for (const text of big) {
      const started = performance.now();
      filesFromDiff(text);
      truncateDiff(text, 1_000_000);
      const ms = performance.now() - started;
      assert.ok(ms < 2_000, `${ms} ms for ${text.slice(0, 30)}… (${text.length} chars)`);
    }
    console.log(`fuzz: diff: large adversarial diffs: ${big.length} inputs tried`);
  });
});

// ---------------------------------------------------------------------------------------------
// Webhook classification

Deno.test("webhook classification: any JSON value is ignored, invalid, a review or a close, never a throw", async () => {
  const event = fc.oneof(fc.constant("pull_request"), fc.string({ maxLength: 20 }));
  const body = fc.oneof(
    fc.anything(),
    fc.jsonValue(),
    mutatedPullRequest.map((d) => {
      const raw = deliveryBody(d.body);
      return raw === "" ? undefined : JSON.parse(raw);
    }),
  );
  await holds(
    "classify: classifyWebhook on random values",
    9,
    fc.property(event, body, (e, b) => {
      const decision = classifyWebhook(e, b);
      assert.ok(["ignore", "invalid", "review", "close"].includes(decision.kind), decision.kind);
      if (e !== "pull_request") assert.equal(decision.kind, "ignore");
      if (decision.kind === "close") {
        assert.equal((b as { action: string }).action, "closed");
        assert.ok(Number.isInteger(decision.pullNumber) && decision.pullNumber > 0);
        assert.match(decision.repo, /^[^/\s]+\/[^/\s]+$/);
      }
      if (decision.kind === "review") {
        const pr = decision.payload.pull_request;
        assert.ok((TRIGGER_ACTIONS as readonly string[]).includes(decision.payload.action));
        assert.equal(pr.state, "open");
        assert.equal(pr.draft, false);
      }
    }),
    2_000,
    2_000,
  );
});
