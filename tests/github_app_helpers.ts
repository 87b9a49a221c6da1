/**
 * Helpers of the GitHub App suites (tests/github_app_test.ts and the attack suites):
 * an App-mode harness (one installation on `OWNER`), pull requests with a known diff, signed
 * `issue_comment` payloads, and a wait for a review and its check to settle.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { sign } from "@octokit/webhooks-methods";
import examples from "@octokit/webhooks-examples" with { type: "json" };
import type { AgentFinding } from "../review/agent_events.ts";
import { reviewScript } from "./fakes/agent.ts";
import type { FakeAppOptions } from "./fakes/github.ts";
import {
  type Harness,
  type HarnessOptions,
  pullRequestPayload,
  sha,
  startHarness,
  waitFor,
  WEBHOOK_SECRET,
} from "./harness.ts";

export const APP_ID = 5151;
export const INSTALLATION = 888;
export const OWNER_ID = 41;
export const OWNER = `owner${OWNER_ID}`;
export const REPO = `${OWNER}/service`;
export const BASE = "b".repeat(40);

export const KEYS = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});

/**
 * `src/app.ts`: hunk 1 (lines 1–3, line 2 added), hunk 2 (lines 10–12, old line 10 deleted and
 * line 11 added); `package-lock.json` changed.
 */
export const DIFF = [
  "diff --git a/src/app.ts b/src/app.ts",
  "--- a/src/app.ts",
  "+++ b/src/app.ts",
  "@@ -1,2 +1,3 @@",
  " const a = 1;",
  "+const b = eval(input);",
  " export { a };",
  "@@ -9,3 +10,3 @@",
  " const c = 3;",
  "-const d = 4;",
  "+const d = eval(other);",
  " const e = 5;",
  "diff --git a/package-lock.json b/package-lock.json",
  "--- a/package-lock.json",
  "+++ b/package-lock.json",
  "@@ -1,3 +1,3 @@",
  " {",
  '-  "lockfileVersion": 2',
  '+  "lockfileVersion": 3',
  " }",
  "",
].join("\n");

export const ON_DIFF: AgentFinding = {
  severity: "critical",
  file_path: "src/app.ts",
  line_number: 2,
  title: "eval of input",
  description: "Runs whatever the caller sends.",
  agent_type: "security",
};

/** A harness whose service authenticates as the App, with one installation on `OWNER`. */
export async function appHarness(
  options: HarnessOptions & { app?: Partial<FakeAppOptions> } = {},
): Promise<Harness> {
  const h = await startHarness({
    script: reviewScript({ findings: [ON_DIFF], summary: "One problem." }),
    ...options,
    env: {
      GITHUB_APP_ID: String(APP_ID),
      GITHUB_APP_PRIVATE_KEY: KEYS.privateKey.replaceAll("\n", "\\n"),
      FAST_PATH: "true",
      ...options.env,
    },
  });
  h.github.enableApp({ appId: APP_ID, publicKeyPem: KEYS.publicKey, ...options.app });
  h.github.install(OWNER, INSTALLATION);
  return h;
}

/** A `pull_request` payload of the App's installation. */
export function openPayload(number: number, headSha: string, action = "opened") {
  const payload = pullRequestPayload({ action, ownerId: OWNER_ID, number, headSha });
  return { ...payload, installation: { id: INSTALLATION } };
}

/** Sets the pull on the fake and sends its `opened` webhook; the review id. */
export async function openPull(
  h: Harness,
  number: number,
  headSha = sha(number),
  diff = DIFF,
): Promise<string> {
  h.github.setPull({ owner: OWNER, repo: "service", number, headSha, diff });
  const res = await h.sendWebhook("pull_request", openPayload(number, headSha));
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.reviewId as string;
}

/** Resolves when the review is `status` and its check run is completed. */
export async function settled(h: Harness, id: string, status = "completed", timeoutMs = 10_000) {
  const review = await h.waitForStatus(id, [status], timeoutMs);
  await waitFor(
    "the check to complete",
    () =>
      h.github.checkRuns.some((r) => r.externalId === id && r.status === "completed") ||
        h.github.statuses.some((s) => s.state !== "pending")
        ? true
        : undefined,
    timeoutMs,
  );
  return review;
}

type Example = { name: string; examples: Record<string, unknown>[] };

/** A real example payload of `event`/`action`, cloned. */
export function example(event: string, action: string): Record<string, unknown> {
  const group = (examples as unknown as Example[]).find((e) => e.name === event)!;
  return structuredClone(group.examples.find((e) => e.action === action)!);
}

/**
 * An `issue_comment.created` payload for a comment added to the fake (by `author`) on pull
 * request `number` of `REPO`.
 */
export function commentPayload(
  h: Harness,
  body: string,
  association: string,
  number: number,
  options: { author?: string; state?: string; onIssue?: boolean } = {},
) {
  const commentId = h.github.addComment({
    owner: OWNER,
    repo: "service",
    issueNumber: number,
    body,
    author: options.author ?? "maintainer",
  }).id;
  const payload = example("issue_comment", "created") as {
    issue: Record<string, unknown>;
    comment: Record<string, unknown>;
    repository: Record<string, unknown>;
    installation?: unknown;
  };
  payload.issue.number = number;
  payload.issue.state = options.state ?? "open";
  if (options.onIssue) delete payload.issue.pull_request;
  else {
    payload.issue.pull_request = { url: `https://api.github.com/repos/${REPO}/pulls/${number}` };
  }
  payload.comment.id = commentId;
  payload.comment.body = body;
  payload.comment.author_association = association;
  payload.repository.full_name = REPO;
  payload.repository.owner = {
    ...(payload.repository.owner as Record<string, unknown>),
    id: OWNER_ID,
    login: OWNER,
    type: "Organization",
  };
  payload.installation = { id: INSTALLATION };
  return payload;
}

/** Runs `fn` with an App harness, always closing it. */
export async function withApp(
  options: HarnessOptions & { app?: Partial<FakeAppOptions> },
  fn: (h: Harness) => Promise<void>,
) {
  const h = await appHarness(options);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

/** Every log line, serialized (to look for secrets). */
export function allLogs(h: Harness): string {
  return h.logs.map((l) => JSON.stringify(l)).join("\n");
}

/** A signed webhook request for any service's `app.fetch` (a second instance, say). */
export async function signedRequest(
  event: string,
  payload: unknown,
  deliveryId: string = crypto.randomUUID(),
): Promise<Request> {
  const raw = JSON.stringify(payload);
  return new Request("http://instance.local/webhooks/github", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": deliveryId,
      "x-hub-signature-256": await sign(WEBHOOK_SECRET, raw),
    },
    body: raw,
  });
}
