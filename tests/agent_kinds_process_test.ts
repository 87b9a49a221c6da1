/**
 * Every agent kind through `deno task start`, each against a fake speaking its real wire format:
 * a signed webhook in, the review completed, what the user sees on the pull request checked.
 * `local` needs no agent at all (no `AGENT_URL`).
 */
import assert from "node:assert/strict";
import { reviewScript, startFakeAgent } from "./fakes/agent.ts";
import { EVAL_AND_KEY_DIFF, startFakeGitHub } from "./fakes/github.ts";
import { kiloReviewFrames, kiloScript, startFakeKilo } from "./fakes/kilo.ts";
import { completionStream, startFakeOpenAi } from "./fakes/openai.ts";
import { BACKEND_TOKEN, pullRequestPayload, sha, waitFor, WEBHOOK_SECRET } from "./harness.ts";
import { getJson, postWebhook, spawnService } from "./process.ts";

const DIFF = EVAL_AND_KEY_DIFF;

/** A free loopback port (for a service that must know its own URL before it starts). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

interface Outcome {
  review: Record<string, unknown>;
  comments: Array<{ body: string }>;
}

/** Starts the service with `env`, sends one signed `opened` webhook, waits for its end. */
async function reviewThroughProcess(
  env: Record<string, string>,
  expected: string,
): Promise<Outcome> {
  const dir = await Deno.makeTempDir({ prefix: "agent-kinds-" });
  const github = await startFakeGitHub();
  github.setPull({ owner: "owner7", repo: "service", number: 3, headSha: sha(3), diff: DIFF });
  const service = await spawnService({
    KV_PATH: `${dir}/kv.sqlite3`,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
    GITHUB_TOKEN: "gh-token",
    GITHUB_API_URL: github.url,
    BACKEND_AUTH_TOKEN: BACKEND_TOKEN,
    ...env,
  }, { viaTask: true });
  try {
    const res = await postWebhook(
      service.url,
      pullRequestPayload({ ownerId: 7, number: 3, headSha: sha(3) }),
    );
    assert.equal(res.status, 202);
    const review = await waitFor(`review ${expected}`, async () => {
      const r = await getJson(service.url, `/reviews/${res.body.reviewId}`);
      if (["failed", "cancelled"].includes(r.status) && r.status !== expected) {
        throw new Error(`review ended ${r.status}: ${r.errorMessage}`);
      }
      return r.status === expected ? r : undefined;
    }, 20_000);
    const selected = service.logs.find((l) => l.message === "review agent selected");
    assert.ok(selected, "the start-up log names the agent kind");
    return { review: { ...review, kindLogged: selected.kind }, comments: github.comments };
  } finally {
    await service.stop("SIGTERM");
    await github.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("deno task start with no AGENT_URL: the local reviewer finds eval and an AWS key", async () => {
  const { review, comments } = await reviewThroughProcess({}, "completed");
  assert.equal(review.kindLogged, "local");
  const findings = review.findings as Array<{ title: string; line_start: number }>;
  assert.equal(findings.length, 2);
  assert.deepEqual(findings.map((f) => f.line_start).sort(), [2, 3]);
  assert.equal(comments.length, 1);
  assert.match(comments[0].body, /eval/i);
  assert.match(comments[0].body, /AWS/);
  assert.doesNotMatch(comments[0].body, /AKIAIOSFODNN7EXAMPLE/, "the secret is masked");
});

Deno.test("deno task start with AGENT_KIND=sse: our own protocol, unchanged", async () => {
  const agent = await startFakeAgent(reviewScript({ summary: "sse summary" }));
  try {
    const { review, comments } = await reviewThroughProcess(
      { AGENT_URL: agent.url, AGENT_TOKEN: "agent-token" },
      "completed",
    );
    assert.equal(review.kindLogged, "sse");
    assert.equal(review.summary, "sse summary");
    assert.equal((review.findings as unknown[]).length, 2);
    assert.equal(agent.sessions[0].headers.get("authorization"), "Bearer agent-token");
    assert.equal(comments.length, 1);
  } finally {
    await agent.close();
  }
});

Deno.test("deno task start with AGENT_KIND=openai: streamed chat completions become findings and usage", async () => {
  const content = [
    "Here is my review:\n```json\n",
    '{"severity":"critical","file_path":"src/handler.js","line_number":3,',
    '"title":"eval on user input","description":"Runs arbitrary code.","suggestion":"JSON.parse"}\n',
    "```\n",
    '{"summary":"One critical problem."}\n',
  ];
  const openai = await startFakeOpenAi(() =>
    completionStream(content, {
      deltaChars: 3,
      usage: { prompt_tokens: 812, completion_tokens: 64 },
    })
  );
  try {
    const { review, comments } = await reviewThroughProcess({
      AGENT_KIND: "openai",
      AGENT_URL: openai.url,
      AGENT_TOKEN: "sk-test",
      AGENT_MODEL: "qwen2.5-coder",
    }, "completed");
    assert.equal(review.kindLogged, "openai");
    assert.deepEqual(
      (review.findings as Array<{ severity: string; line_start: number }>).map((
        f,
      ) => [f.severity, f.line_start]),
      [["critical", 3]],
    );
    assert.equal(review.summary, "One critical problem.");
    assert.deepEqual(review.usage, { model: "m", tokensIn: 812, tokensOut: 64, cost: 0 });
    const [request] = openai.requests;
    assert.equal(request.headers.get("authorization"), "Bearer sk-test");
    assert.equal(request.body.model, "qwen2.5-coder");
    assert.equal(request.body.stream, true);
    assert.ok(JSON.stringify(request.body.messages).includes("eval(userInput)"));
    assert.equal(comments.length, 1);
    assert.match(comments[0].body, /eval on user input/);
  } finally {
    await openai.close();
  }
});

Deno.test("deno task start with AGENT_KIND=kilo: the cloud agent's callback completes the review", async () => {
  const kilo = await startFakeKilo(kiloScript({ callback: { status: "completed", delayMs: 50 } }));
  const port = freePort();
  try {
    const { review, comments } = await reviewThroughProcess({
      AGENT_KIND: "kilo",
      AGENT_URL: kilo.url,
      AGENT_TOKEN: "kilo-token",
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      CALLBACK_SECRET: "callback-secret",
    }, "completed");
    assert.equal(review.kindLogged, "kilo");
    assert.equal(review.sessionId, "agent_1");
    assert.equal((review.usage as { tokensIn: number }).tokensIn, 1200);
    assert.equal(comments.length, 0, "the cloud agent posts to GitHub itself");
    assert.deepEqual(kilo.callbacks.map((c) => c.httpStatus), [200]);
    assert.equal(kilo.sessions[0].headers.get("authorization"), "Bearer kilo-token");
  } finally {
    await kilo.close();
  }
});

Deno.test("kilo after kill -9: the process that takes the review over stops the dead one's remote session first", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kilo-crash-" });
  const github = await startFakeGitHub();
  github.setPull({ owner: "owner7", repo: "service", number: 3, headSha: sha(3) });
  // The first session works on (no `complete`) until interrupted; the second one completes.
  const kilo = await startFakeKilo((session, ctl) =>
    session.index === 0
      ? kiloScript({ holdOpen: true, frames: (id) => kiloReviewFrames(id).slice(0, -1) })(
        session,
        ctl,
      )
      : kiloScript({ callback: { status: "completed", delayMs: 20 } })(session, ctl)
  );
  const start = (port: number) =>
    spawnService({
      KV_PATH: `${dir}/kv.sqlite3`,
      GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
      GITHUB_TOKEN: "gh-token",
      GITHUB_API_URL: github.url,
      BACKEND_AUTH_TOKEN: BACKEND_TOKEN,
      AGENT_KIND: "kilo",
      AGENT_URL: kilo.url,
      CALLBACK_SECRET: "callback-secret",
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      QUEUE_TRANSPORT: "kv-table",
      QUEUE_POLL_MS: "100",
      LEASE_MS: "1500",
      SWEEP_INTERVAL_MS: "300",
      PROGRESS_WRITE_MS: "100",
    });
  const a = await start(freePort());
  let b: Awaited<ReturnType<typeof spawnService>> | undefined;
  try {
    const res = await postWebhook(
      a.url,
      pullRequestPayload({ ownerId: 7, number: 3, headSha: sha(3) }),
    );
    const id = res.body.reviewId as string;
    await waitFor("the first session's id on the record", async () => {
      const r = await getJson(a.url, `/reviews/${id}`);
      return r.sessionId === "agent_1" ? r : undefined;
    });
    await a.stop("SIGKILL"); // no hand-back, no interrupt: the remote session runs on
    assert.equal(kilo.interrupts.length, 0);
    b = await start(freePort());
    const done = await waitFor("the review completed on the other process", async () => {
      const r = await getJson(b!.url, `/reviews/${id}`);
      return r.status === "completed" ? r : undefined;
    }, 20_000);
    assert.equal(done.attempts, 2);
    assert.equal(done.sessionId, "agent_2");
    const stopped = kilo.interrupts.find((i) =>
      (i.body as { sessionId: string }).sessionId === "agent_1"
    );
    assert.ok(stopped, "the dead process's session was interrupted");
    assert.ok(stopped.receivedAt <= kilo.sessions[1].receivedAt, "before the new session opened");
  } finally {
    await b?.stop("SIGTERM");
    await a.stop("SIGKILL").catch(() => {});
    await kilo.close();
    await github.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
