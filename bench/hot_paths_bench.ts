/**
 * Micro-benchmarks of the service's hot pure functions, in the order a review meets them:
 * webhook signature check, payload parse and classification, the agent's SSE stream, findings
 * mapping, and what is rendered for GitHub. Inputs are built once at load and checked once, so
 * each bench measures the path the service really takes (a `review` decision, 100 findings, …).
 *
 *   deno bench bench/hot_paths_bench.ts
 *
 * No permission flags are needed: every input is built in memory (the example payloads come in
 * through a JSON module import), and the agent stream is served by an in-memory `fetch`.
 *
 * @module
 */
import { sign } from "@octokit/webhooks-methods";
import examples from "@octokit/webhooks-examples" with { type: "json" };
import { createParser } from "eventsource-parser";
import type { Finding } from "../kv/records.ts";
import {
  type AgentFinding,
  AgentFindingSchema,
  AgentStatusSchema,
  AgentSummarySchema,
} from "../review/agent_events.ts";
import { runAgent } from "../review/agent_session.ts";
import type { AgentRequest } from "../review/agents/agent.ts";
import { createSseAgent } from "../review/agents/sse.ts";
import { checkAnnotations, checkOutput } from "../review/check_output.ts";
import { formatReviewComment } from "../review/comment.ts";
import { countBySeverity, mapAgentFinding } from "../review/findings.ts";
import { anchorDiff, findingAnchors } from "../review/inline_publish.ts";
import { buildInlineReview } from "../review/inline_review.ts";
import { classifyEvent } from "../review/webhook_events.ts";
import { classifyWebhook, reviewFromPayload } from "../review/webhook_payload.ts";
import { verifySignature } from "../routes/signature.ts";
import { pullRequestPayload, sha, WEBHOOK_SECRET } from "../tests/harness.ts";

const encoder = new TextEncoder();

/** Results land here: a write to module state is a side effect no optimizer may drop. */
let sink = 0;
function consume(n: number): void {
  sink = (sink + n) | 0;
}

/** Fails loudly at load, so a bench never silently measures a refusal or an empty path. */
function expect(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench input is not what it should be: ${what}`);
}

/** The route's parse step: strict UTF-8, then JSON (routes/webhooks.ts). */
function parseBody(bytes: Uint8Array): unknown {
  return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
}

// --- Webhook inputs ------------------------------------------------------------------------------

/** A real `pull_request.opened` delivery as GitHub sends it: compact JSON, signed. */
const prRaw = JSON.stringify(
  pullRequestPayload({ ownerId: 6811672, ownerLogin: "octo-org", number: 42, headSha: sha(42) }),
);
const prBytes = encoder.encode(prRaw);
const validSignature = await sign(WEBHOOK_SECRET, prRaw);
// Same length and form, one digit off: passes the header check, so the HMAC is computed in full.
const invalidSignature = validSignature.slice(0, -1) +
  (validSignature.endsWith("0") ? "1" : "0");
const reviewMeta = { id: "00000000-0000-4000-8000-000000000000", deliveryId: "d-1", now: 1 };

type Example = { name: string; examples: Record<string, unknown>[] };
/** An `issue_comment.created` example turned into a member's `/review` on a pull request. */
function reviewCommand(): string {
  const group = (examples as unknown as Example[]).find((e) => e.name === "issue_comment")!;
  const payload = structuredClone(group.examples.find((e) => e.action === "created")!) as {
    issue: Record<string, unknown>;
    comment: Record<string, unknown>;
  };
  payload.issue.pull_request = { url: "https://api.github.com/repos/octo-org/service/pulls/42" };
  payload.issue.state = "open";
  payload.comment.body = "/review";
  payload.comment.author_association = "MEMBER";
  return JSON.stringify(payload);
}
const commentBytes = encoder.encode(reviewCommand());

expect(await verifySignature(WEBHOOK_SECRET, prBytes, validSignature), "valid signature");
expect(!(await verifySignature(WEBHOOK_SECRET, prBytes, invalidSignature)), "invalid signature");
const prDecision = classifyWebhook("pull_request", parseBody(prBytes));
expect(prDecision.kind === "review", `classifyWebhook gave ${prDecision.kind}`);
const prPayload = prDecision.kind === "review" ? prDecision.payload : undefined!;
const commandDecision = classifyEvent("issue_comment", parseBody(commentBytes));
expect(commandDecision.kind === "command", `classifyEvent gave ${commandDecision.kind}`);

// --- Agent stream inputs -------------------------------------------------------------------------

const FILES = 10;
const HUNKS = 3;
/** New-file line where hunk `h` starts; each hunk shows 30 new lines (10 context, 15 added, 5). */
const hunkStart = (h: number) => 1 + h * 100;

/** A diff of 10 files with 3 hunks each: 15 added, 5 removed and 15 context lines per hunk. */
function syntheticDiff(): string {
  const parts: string[] = [];
  for (let f = 0; f < FILES; f++) {
    const path = `src/module_${f}.ts`;
    parts.push(`diff --git a/${path} b/${path}\nindex 1111111..2222222 100644\n`);
    parts.push(`--- a/${path}\n+++ b/${path}\n`);
    for (let h = 0; h < HUNKS; h++) {
      const s = hunkStart(h);
      parts.push(`@@ -${s},25 +${s},30 @@ export function handler${h}() {\n`);
      for (let i = 0; i < 10; i++) parts.push(`   const ctx${i} = await load(${i});\n`);
      for (let i = 0; i < 5; i++) parts.push(`-  legacy(${i}, ctx${i});\n`);
      for (let i = 0; i < 15; i++) parts.push(`+  const value${i} = eval(request.query.v${i});\n`);
      for (let i = 0; i < 5; i++) parts.push(`   return finish(ctx${i});\n`);
    }
  }
  return parts.join("");
}
const diff = syntheticDiff();

const SEVERITIES: AgentFinding["severity"][] = ["critical", "warning", "warning", "info"];
/** Findings the size an LLM reviewer writes: a paragraph, often a suggestion, some replacements. */
function agentFinding(i: number): AgentFinding {
  const h = i % HUNKS;
  const line = hunkStart(h) + 10 + (i % 15);
  return {
    severity: SEVERITIES[i % SEVERITIES.length],
    file_path: `src/module_${i % FILES}.ts`,
    line_number: i % 17 === 0 ? null : line,
    ...(i % 5 === 0 ? { line_end: line + 2 } : {}),
    title: `Untrusted input reaches eval in handler${h} (#${i})`,
    description: `\`request.query.v${i % 15}\` comes straight from the client and is passed to ` +
      "`eval`, so anyone who can send a request can run arbitrary code in the service process. " +
      "This also defeats the content security policy and makes the handler impossible to type " +
      "check. The same pattern appears in the neighbouring handlers; fixing it in one place " +
      "(a small parser for the accepted values) would cover all of them.",
    ...(i % 2 === 0
      ? { suggestion: "Parse the value with a schema instead of evaluating it." }
      : {}),
    ...(i % 5 === 0
      ? { replacement: `  const value${i % 15} = parseValue(request.query.v${i % 15});\n` }
      : {}),
    agent_type: i % 3 === 0 ? "security" : "correctness",
  };
}
const FINDINGS = 100;
const agentFindings = Array.from({ length: FINDINGS }, (_, i) => agentFinding(i));

/** 200 events as the agent streams them: progress between findings, then summary and done. */
function sseFrames(): string[] {
  const frame = (event: string, data: unknown) =>
    `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  const frames: string[] = [];
  for (let i = 0; i < FINDINGS; i++) {
    if (i < 98) frames.push(frame("status", { message: `reading src/module_${i % FILES}.ts` }));
    frames.push(frame("finding", agentFindings[i]));
  }
  frames.push(frame("summary", { text: "Ten handlers evaluate request input; see the findings." }));
  frames.push(frame("done", {}));
  return frames;
}
const frames = sseFrames();
// One network chunk per event, as an agent that flushes after each write sends them.
const chunks = frames.map((f) => encoder.encode(f));
const streamText = frames.join("");

/** `fetch` answered from memory: the service's stream code runs, the network does not. */
const memoryFetch: typeof fetch = () =>
  Promise.resolve(
    new Response(ReadableStream.from(chunks), {
      headers: { "content-type": "text/event-stream", "x-session-id": "session-1" },
    }),
  );
const sseAgent = createSseAgent({ baseUrl: "http://agent.invalid", idleTimeoutMs: 60_000 });
const agentRequest: AgentRequest = {
  reviewId: "r-1",
  attempt: 1,
  repo: "octo-org/service",
  pullNumber: 42,
  headSha: sha(42),
  baseSha: "b".repeat(40),
  title: "Read handler values from the query",
  // A small diff: the request body is serialized per session, which is not what is measured here.
  diff: "diff --git a/x b/x\n",
  files: ["x"],
};
function runSession() {
  return runAgent(sseAgent, agentRequest, {
    signal: new AbortController().signal,
    fetch: memoryFetch,
    totalTimeoutMs: 60_000,
  });
}

expect(frames.length === 200, `${frames.length} frames`);
const session = await runSession();
expect(session.findings.length === FINDINGS && session.skippedEvents === 0, "session findings");

// --- Stored findings and rendering inputs --------------------------------------------------------

const stored: Finding[] = agentFindings.map(mapAgentFinding);
const counts = countBySeverity(stored);
expect(
  counts.critical === 25 && counts.medium === 50 && counts.info === 25,
  `severity mapping ${JSON.stringify(counts)}`,
);
const RENDERED = 50;
const shown = stored.slice(0, RENDERED);
// Publishing sees only the anchored hunks (inline_publish.ts), not the diff the agent saw.
const anchors = findingAnchors(diff, stored);
const anchored = anchorDiff(anchors);
expect(anchors.length === FILES * HUNKS, `${anchors.length} anchors`);
const renderInput = {
  repo: "octo-org/service",
  pullNumber: 42,
  headSha: sha(42),
  summary: session.summary,
  findings: shown,
  reviewId: "r-1",
};
expect(formatReviewComment(renderInput).split("\n| ").length - 2 === RENDERED, "comment rows");
expect(checkAnnotations(shown, anchored).length > 40, "annotations on the diff");
expect(
  buildInlineReview({ ...renderInput, diff: anchored, minSeverity: "info" }).comments.length > 40,
  "inline comments",
);

// --- Webhook: signature ---------------------------------------------------------------------------

Deno.bench({
  name: "decode + JSON.parse body (route's parse step)",
  group: "verify",
  baseline: true,
  fn: () => consume((parseBody(prBytes) as { number: number }).number),
});
Deno.bench({
  name: "verifySignature valid",
  group: "verify",
  fn: async () => consume(Number(await verifySignature(WEBHOOK_SECRET, prBytes, validSignature))),
});
Deno.bench({
  name: "verifySignature invalid (same length)",
  group: "verify",
  fn: async () => consume(Number(await verifySignature(WEBHOOK_SECRET, prBytes, invalidSignature))),
});

// --- Webhook: classification and mapping --------------------------------------------------------

Deno.bench({
  name: "decode + JSON.parse body",
  group: "classify",
  baseline: true,
  fn: () => consume((parseBody(prBytes) as { number: number }).number),
});
Deno.bench({
  name: "parse + classifyWebhook",
  group: "classify",
  fn: () => consume(classifyWebhook("pull_request", parseBody(prBytes)).kind.length),
});
Deno.bench({
  name: "parse + classifyWebhook + reviewFromPayload",
  group: "classify",
  fn: () => {
    const decision = classifyWebhook("pull_request", parseBody(prBytes));
    if (decision.kind !== "review") throw new Error(decision.kind);
    consume(reviewFromPayload(decision.payload, reviewMeta).pullNumber);
  },
});
Deno.bench({
  name: "classifyWebhook (parsed body)",
  group: "classify",
  fn: () => consume(classifyWebhook("pull_request", prPayload).kind.length),
});
Deno.bench({
  name: "reviewFromPayload (classified payload)",
  group: "classify",
  fn: () => consume(reviewFromPayload(prPayload, reviewMeta).pullNumber),
});
Deno.bench({
  name: "parse + classifyEvent issue_comment /review",
  group: "classify",
  fn: () => consume(classifyEvent("issue_comment", parseBody(commentBytes)).kind.length),
});

// The whole pure part of one `pull_request` delivery, as the route runs it (minus KV).
Deno.bench({
  name: "verify + parse + classify + reviewFromPayload",
  group: "webhook",
  fn: async () => {
    if (!(await verifySignature(WEBHOOK_SECRET, prBytes, validSignature))) throw new Error("sig");
    const decision = classifyWebhook("pull_request", parseBody(prBytes));
    if (decision.kind !== "review") throw new Error(decision.kind);
    consume(reviewFromPayload(decision.payload, reviewMeta).pullNumber);
  },
});

// --- Agent stream ---------------------------------------------------------------------------------

// The library's own cost on the same bytes: what the service's stream code adds is the rest.
Deno.bench({
  name: "eventsource-parser + JSON.parse only (200 events)",
  group: "sse",
  baseline: true,
  fn: () => {
    let n = 0;
    const parser = createParser({ onEvent: (e) => n += JSON.parse(e.data) ? 1 : 0 });
    for (const frame of frames) parser.feed(frame);
    consume(n);
  },
});
Deno.bench({
  name: "eventsource-parser, one feed of the whole stream",
  group: "sse",
  fn: () => {
    let n = 0;
    const parser = createParser({ onEvent: (e) => n += e.data.length });
    parser.feed(streamText);
    consume(n);
  },
});
// The per-event validation `sse.ts` does (its parser is not exported): which share zod takes.
const schemaOf: Record<string, { safeParse(data: unknown): { success: boolean } }> = {
  status: AgentStatusSchema,
  finding: AgentFindingSchema,
  summary: AgentSummarySchema,
};
Deno.bench({
  name: "eventsource-parser + JSON.parse + zod (200 events)",
  group: "sse",
  fn: () => {
    let n = 0;
    const parser = createParser({
      onEvent: (e) => n += schemaOf[e.event ?? ""]?.safeParse(JSON.parse(e.data)).success ? 1 : 0,
    });
    for (const frame of frames) parser.feed(frame);
    consume(n);
  },
});
Deno.bench({
  name: "runAgent(createSseAgent) 200 events, in-memory fetch",
  group: "sse",
  fn: async () => consume((await runSession()).findings.length),
});

// --- Findings -------------------------------------------------------------------------------------

Deno.bench({
  name: "mapAgentFinding ×100",
  group: "findings",
  baseline: true,
  fn: () => consume(agentFindings.map(mapAgentFinding).length),
});
Deno.bench({
  name: "countBySeverity ×100",
  group: "findings",
  fn: () => consume(countBySeverity(stored).medium),
});
Deno.bench({
  name: "findingAnchors (30-hunk diff, 100 findings)",
  group: "findings",
  fn: () => consume(findingAnchors(diff, stored).length),
});

// --- Rendering for GitHub -------------------------------------------------------------------------

Deno.bench({
  name: "formatReviewComment (50 findings)",
  group: "render",
  baseline: true,
  fn: () => consume(formatReviewComment(renderInput).length),
});
Deno.bench({
  name: "checkOutput (50 findings)",
  group: "render",
  fn: () => consume(checkOutput(renderInput).summary.length),
});
Deno.bench({
  name: "checkAnnotations(anchorDiff) (50 findings)",
  group: "render",
  fn: () => consume(checkAnnotations(shown, anchorDiff(anchors)).length),
});
Deno.bench({
  name: "buildInlineReview(anchorDiff) (50 findings)",
  group: "render",
  fn: () =>
    consume(
      buildInlineReview({ ...renderInput, diff: anchorDiff(anchors), minSeverity: "info" }).body
        .length,
    ),
});
