/**
 * The service as a GitHub App, through the real server against the fake GitHub: installation
 * tokens, one summary comment + one inline review + one check run per head, repository
 * configuration, `/review` commands, installation events, outdated reviews minimized.
 */
import assert from "node:assert/strict";
import type { AgentFinding } from "../review/agent_events.ts";
import { reviewScript } from "./fakes/agent.ts";
import {
  appHarness as startApp,
  commentPayload,
  DIFF,
  example,
  INSTALLATION,
  openPayload,
  openPull,
  OWNER,
  OWNER_ID,
  settled,
} from "./github_app_helpers.ts";
import {
  type Harness,
  type HarnessOptions,
  pullRequestPayload,
  sha,
  startHarness,
  waitFor,
} from "./harness.ts";

const ON_DIFF: AgentFinding = {
  severity: "critical",
  file_path: "src/app.ts",
  line_number: 2,
  title: "eval of input",
  description: "Runs whatever the caller sends.",
  replacement: "const b = JSON.parse(input);",
  agent_type: "security",
};
const ELSEWHERE: AgentFinding = {
  severity: "warning",
  file_path: "src/other.ts",
  line_number: 40,
  title: "unchecked error",
  description: "A file the change does not touch.",
  agent_type: "correctness",
};

/** The App harness of these tests: the agent reports one finding on the diff and one elsewhere. */
function appHarness(options: HarnessOptions = {}): Promise<Harness> {
  return startApp({
    script: reviewScript({ findings: [ON_DIFF, ELSEWHERE], summary: "One real problem." }),
    ...options,
  });
}

Deno.test("an App review posts one summary comment, one inline review with one comment and one completed check run; the lock file never reaches the agent", async () => {
  const h = await appHarness();
  try {
    const id = await openPull(h, 1);
    const review = await settled(h, id);
    assert.equal(review.installationId, INSTALLATION);

    assert.equal(h.github.comments.length, 1, "one summary comment");
    const summary = h.github.comments[0];
    assert.equal(summary.author, "ai-review[bot]");
    assert.match(summary.body, /2 findings/);
    assert.match(summary.body, /package-lock\.json/, "the comment says the lock file was left out");

    assert.equal(h.github.reviews.length, 1, "one inline review");
    const inline = h.github.reviews[0];
    assert.equal(inline.commitId, sha(1));
    assert.equal(inline.event, "COMMENT");
    assert.deepEqual(
      inline.comments.map((c) => [c.path, c.line, c.side]),
      [["src/app.ts", 2, "RIGHT"]],
    );
    assert.match(inline.comments[0].body, /```suggestion\nconst b = JSON\.parse\(input\);\n```/);
    assert.match(inline.body, /src\/other\.ts/, "the finding elsewhere goes in the review body");

    assert.equal(h.github.checkRuns.length, 1, "one check run");
    const check = h.github.checkRuns[0];
    assert.deepEqual([check.name, check.headSha, check.status], ["AI review", sha(1), "completed"]);
    assert.equal(check.conclusion, "neutral", "findings at or above min_severity");
    assert.deepEqual(check.annotations.map((a) => [a.path, a.start_line]), [["src/app.ts", 2]]);

    const sent = h.agent.sessions.map((s) => JSON.stringify(s.body)).join("\n");
    assert.doesNotMatch(sent, /package-lock|lockfileVersion/, "nothing of the lock file is sent");
    assert.match(sent, /eval\(input\)/);

    // Every GitHub call used the installation token, and one was enough.
    assert.equal(h.github.issuedTokens.length, 1);
    const token = h.github.issuedTokens[0].token;
    const calls = h.github.requests.filter((r) => r.path !== "/app" && !r.path.startsWith("/app/"));
    assert.ok(calls.every((r) => r.authorization === `token ${token}`), "installation token");
    console.log(
      `GitHub calls for a review with an inline comment: ${calls.length} ` +
        `(${
          calls.map((r) => `${r.method} ${r.path.replace(/^\/repos\/[^/]+\/[^/]+/, "")}`).join(", ")
        })`,
    );
  } finally {
    await h.close();
  }
});

Deno.test("no finding on the diff: no inline review, a successful check; calls counted", async () => {
  const h = await appHarness({ script: reviewScript({ findings: [ELSEWHERE] }) });
  try {
    h.github.setFile(
      OWNER,
      "service",
      "b".repeat(40),
      ".github/ai-review.yml",
      "fail_on: critical\n",
    );
    const id = await openPull(h, 2);
    await settled(h, id);
    assert.equal(h.github.comments.length, 1);
    assert.equal(h.github.reviews.length, 0);
    assert.equal(h.github.checkRuns[0].conclusion, "success", "below fail_on");
    const calls = h.github.requests.filter((r) => r.path !== "/app" && !r.path.startsWith("/app/"));
    console.log(`GitHub calls for a review without inline comments: ${calls.length}`);
  } finally {
    await h.close();
  }
});

Deno.test("never twice: a create answered 502 after it happened is found by its marker", async () => {
  const h = await appHarness();
  try {
    h.github.failNext("review", 502, 1, { afterEffect: true });
    h.github.failNext("checks.create", 502, 1, { afterEffect: true });
    h.github.failNext("comment", 502, 1, { afterEffect: true });
    const id = await openPull(h, 3);
    await settled(h, id);
    assert.equal(h.github.comments.length, 1);
    assert.equal(h.github.reviews.length, 1);
    assert.equal(h.github.checkRuns.length, 1);
    assert.equal(h.github.checkRuns[0].status, "completed");
  } finally {
    await h.close();
  }
});

Deno.test("never twice: a retried review's second session adopts the check run its first session made without looking", async () => {
  const script = reviewScript({ findings: [ON_DIFF] });
  const h: Harness = await appHarness({
    // The first session fails (retryable) once its check run exists; the retry completes.
    script: async (s, ctl) => {
      if (s.index > 0) return script(s, ctl);
      await waitFor("the check run", () => h.github.checkRuns.length > 0 || undefined, 5_000);
      return new Response("busy", { status: 503 });
    },
  });
  try {
    const id = await openPull(h, 5);
    const review = await settled(h, id);
    assert.equal(review.attempts, 2);
    assert.equal(h.github.checkRuns.length, 1);
    assert.equal(h.github.checkRuns[0].status, "completed");
    const looks = h.github.requests.filter((r) => r.method === "GET" && /check-runs/.test(r.path));
    assert.equal(looks.length, 1, "only the second session looks for the run");
  } finally {
    await h.close();
  }
});

Deno.test("never twice: a review published again (a retried publishing step) adopts what is on the PR", async () => {
  const h = await appHarness();
  try {
    // The first attempt posts everything, then its completion commit fails once: the retry
    // publishes again and must find the comment, the inline review and the check run.
    h.github.failNext("reviews.list", 503, 3); // the first look fails: retried inside the client
    const id = await openPull(h, 4);
    await settled(h, id);
    const second = await h.sendWebhook("pull_request", openPayload(4, sha(4), "reopened"));
    assert.equal(second.status, 202);
    const again = second.body.reviewId as string;
    assert.notEqual(again, id);
    await settled(h, again);
    assert.equal(h.github.comments.length, 1, "the summary comment is updated in place");
    assert.equal(h.github.reviews.length, 1, "one inline review per head");
  } finally {
    await h.close();
  }
});

Deno.test("a newer head's review minimizes the earlier head's inline review as outdated", async () => {
  const h = await appHarness();
  try {
    const first = await openPull(h, 5, sha(50));
    await settled(h, first);
    h.github.setPull({ owner: OWNER, repo: "service", number: 5, headSha: sha(51), diff: DIFF });
    const res = await h.sendWebhook("pull_request", openPayload(5, sha(51), "synchronize"));
    await settled(h, res.body.reviewId as string);
    assert.equal(h.github.reviews.length, 2);
    const [old, current] = h.github.reviews;
    assert.deepEqual(old.minimized, { classifier: "OUTDATED" });
    assert.equal(current.minimized, undefined);
    assert.equal(h.github.comments.length, 1);
  } finally {
    await h.close();
  }
});

Deno.test("repository configuration: an invalid file is named in the comment; enabled: false posts nothing", async () => {
  const h = await appHarness();
  try {
    const base = "b".repeat(40);
    h.github.setFile(OWNER, "service", base, ".github/ai-review.yml", "min_severity: urgent\n");
    const id = await openPull(h, 6);
    await settled(h, id);
    assert.match(h.github.comments[0].body, /min_severity/);

    h.github.setFile(OWNER, "other", base, ".github/ai-review.yml", "enabled: false\n");
    h.github.setPull({ owner: OWNER, repo: "other", number: 7, headSha: sha(7), diff: DIFF });
    const payload = {
      ...pullRequestPayload({ ownerId: OWNER_ID, number: 7, headSha: sha(7), repo: "other" }),
      installation: { id: INSTALLATION },
    };
    const res = await h.sendWebhook("pull_request", payload);
    const off = await h.waitForStatus(res.body.reviewId as string, ["cancelled"]);
    assert.equal(off.terminalReason, "disabled_by_config");
    assert.equal(h.github.comments.filter((c) => c.repo === "other").length, 0);
    assert.equal(h.agent.sessions.filter((s) => s.body.repo === `${OWNER}/other`).length, 0);
  } finally {
    await h.close();
  }
});

Deno.test("instructions and model from the configuration reach the agent; ignore globs add to the defaults", async () => {
  const h = await appHarness();
  try {
    h.github.setFile(
      OWNER,
      "service",
      "b".repeat(40),
      ".github/ai-review.yml",
      "instructions: Focus on security.\nmodel: big-model\npaths:\n  ignore: ['src/**']\n",
    );
    const id = await openPull(h, 8);
    await settled(h, id);
    const body = h.agent.sessions[0].body;
    assert.match(String(body.prompt ?? ""), /Focus on security\./);
    assert.equal(body.model, "big-model");
    assert.doesNotMatch(JSON.stringify(body), /src\/app\.ts|package-lock/);
  } finally {
    await h.close();
  }
});

Deno.test("/review from a member queues a fresh review of the current head once, with 👀; others are ignored", async () => {
  const h = await appHarness();
  try {
    const first = await openPull(h, 9);
    await settled(h, first);
    const sessions = h.agent.sessions.length;

    const stranger = await h.sendWebhook("issue_comment", commentPayload(h, "/review", "NONE", 9));
    assert.equal(stranger.status, 200);
    assert.equal(stranger.body.status, "ignored");

    const payload = commentPayload(h, "/review", "MEMBER", 9);
    const commentId = (payload.comment as { id: number }).id;
    const asked = await h.sendWebhook("issue_comment", payload);
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    const again = await h.sendWebhook("issue_comment", payload); // redelivered
    assert.equal(again.body.reviewId, asked.body.reviewId);
    const review = await h.waitForStatus(asked.body.reviewId as string, ["completed"]);
    assert.equal(review.headSha, sha(9), "the head the pull request is at");
    assert.equal(h.agent.sessions.length, sessions + 1, "one fresh review, not two");
    await waitFor(
      "the 👀 reaction",
      () => h.github.reactions.find((r) => r.commentId === commentId && r.content === "eyes"),
    );
    assert.equal(h.github.comments.filter((c) => c.author === "ai-review[bot]").length, 1);
    assert.ok(h.github.reviews.length <= 1, "still one inline review for the head");
  } finally {
    await h.close();
  }
});

Deno.test("/review cancel stops the pull request's unfinished review", async () => {
  const h = await appHarness({
    script: (_s, ctl) =>
      new Promise((_, reject) =>
        ctl.signal.addEventListener("abort", () => reject(ctl.signal.reason), { once: true })
      ),
  });
  try {
    const id = await openPull(h, 10);
    await waitFor("the agent session", () => h.agent.sessions.length === 1 || undefined);
    const res = await h.sendWebhook(
      "issue_comment",
      commentPayload(h, "/review cancel", "OWNER", 10),
    );
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: "cancelled", stopped: 1 });
    const stopped = await h.waitForStatus(id, ["cancelled"]);
    assert.equal(stopped.terminalReason, "cancelled");
    await waitFor("the 👀 reaction", () => h.github.reactions.find((r) => r.content === "eyes"));
    await waitFor(
      "the check run stopped",
      () => h.github.checkRuns.find((r) => r.externalId === id && r.conclusion === "cancelled"),
    );
  } finally {
    await h.close();
  }
});

Deno.test("an uninstalled installation's cached token is dropped", async () => {
  const h = await appHarness();
  try {
    await settled(h, await openPull(h, 11));
    assert.equal(h.github.issuedTokens.length, 1);
    const deleted = example("installation", "deleted");
    (deleted.installation as { id: number }).id = INSTALLATION;
    const res = await h.sendWebhook("installation", deleted);
    assert.deepEqual([res.status, res.body.status], [200, "forgotten"]);
    assert.equal(
      await h.kv.get(["github_installation_tokens", INSTALLATION]).then((e) => e.value),
      null,
    );
  } finally {
    await h.close();
  }
});

Deno.test("a failed review says why on the pull request and that /review retries it", async () => {
  const h = await appHarness({
    script: () => Promise.reject(new Error("unused")),
    env: { MAX_ATTEMPTS: "1" },
  });
  try {
    h.agent.setScript(() =>
      Promise.resolve(
        new Response('event: error\ndata: {"message":"model overloaded","retryable":false}\n\n', {
          headers: { "content-type": "text/event-stream" },
        }),
      )
    );
    const id = await openPull(h, 12);
    await settled(h, id, "failed");
    assert.equal(h.github.comments.length, 1);
    assert.match(h.github.comments[0].body, /failed/);
    assert.match(h.github.comments[0].body, /model overloaded/);
    assert.match(h.github.comments[0].body, /`\/review`/);
    assert.equal(h.github.checkRuns[0].conclusion, "failure");
  } finally {
    await h.close();
  }
});

Deno.test("a personal token that may not write check runs gets a commit status instead", async () => {
  const h = await startHarness({ env: { FAST_PATH: "true" } });
  try {
    h.github.checksForbidden(true);
    const res = await h.openPull(13, 14);
    await h.waitForStatus(res.body.reviewId as string, ["completed"]);
    await waitFor(
      "the final status",
      () => h.github.statuses.find((s) => s.state === "success" && s.context === "AI review"),
    );
    assert.ok(h.github.statuses.some((s) => s.state === "pending"));
    assert.equal(h.github.checkRuns.length, 0);
  } finally {
    await h.close();
  }
});
