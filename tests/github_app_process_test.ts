/**
 * The GitHub App through `deno task start`: installation tokens from a key generated here, a PR with
 * a finding on a changed line, a finding elsewhere and a lock file → one summary comment, one inline
 * review with one inline comment, one completed check run, and nothing of the lock file sent to
 * the agent. A second process on the same KV file uses the token the first one cached.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import type { AgentFinding } from "../review/agent_events.ts";
import { reviewScript, startFakeAgent } from "./fakes/agent.ts";
import { startFakeGitHub } from "./fakes/github.ts";
import { BACKEND_TOKEN, pullRequestPayload, sha, waitFor, WEBHOOK_SECRET } from "./harness.ts";
import { getJson, postWebhook, spawnService } from "./process.ts";

const DIFF = [
  "diff --git a/src/app.ts b/src/app.ts",
  "--- a/src/app.ts",
  "+++ b/src/app.ts",
  "@@ -1,2 +1,3 @@",
  " const a = 1;",
  "+const b = eval(input);",
  " export { a };",
  "diff --git a/yarn.lock b/yarn.lock",
  "--- a/yarn.lock",
  "+++ b/yarn.lock",
  "@@ -1 +1 @@",
  "-left-pad@1.0.0",
  "+left-pad@1.3.0",
  "",
].join("\n");

const FINDINGS: AgentFinding[] = [
  {
    severity: "critical",
    file_path: "src/app.ts",
    line_number: 2,
    title: "eval of input",
    description: "Runs whatever the caller sends.",
    agent_type: "security",
  },
  {
    severity: "info",
    file_path: "src/unchanged.ts",
    line_number: 9,
    title: "naming",
    description: "Outside the change.",
    agent_type: "style",
  },
];

Deno.test("deno task start as a GitHub App: one comment, one inline review with one comment, one check run; the lock file stays out", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  const dir = await Deno.makeTempDir({ prefix: "github-app-" });
  const github = await startFakeGitHub();
  const agent = await startFakeAgent(reviewScript({ findings: FINDINGS }));
  github.enableApp({ appId: 99, publicKeyPem: publicKey });
  github.install("owner41", 5150);
  const env = {
    KV_PATH: `${dir}/kv.sqlite3`,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
    GITHUB_APP_ID: "99",
    GITHUB_APP_PRIVATE_KEY: privateKey.replaceAll("\n", "\\n"),
    GITHUB_API_URL: github.url,
    AGENT_URL: agent.url,
    BACKEND_AUTH_TOKEN: BACKEND_TOKEN,
  };
  const services = [];
  try {
    const service = await spawnService(env, { viaTask: true });
    services.push(service);
    const review = async (url: string, number: number) => {
      github.setPull({
        owner: "owner41",
        repo: "service",
        number,
        headSha: sha(number),
        diff: DIFF,
      });
      const res = await postWebhook(url, {
        ...pullRequestPayload({ ownerId: 41, number, headSha: sha(number) }),
        installation: { id: 5150 },
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return await waitFor("the review and its check run", async () => {
        const r = await getJson(url, `/reviews/${res.body.reviewId}`);
        if (r.status === "failed") throw new Error(`failed: ${r.errorMessage}`);
        const check = github.checkRuns.find((c) => c.externalId === res.body.reviewId);
        return r.status === "completed" && check?.status === "completed" ? r : undefined;
      }, 20_000);
    };
    const done = await review(service.url, 1);
    assert.equal(done.installationId, 5150);
    assert.equal(github.comments.length, 1);
    assert.equal(github.comments[0].author, "ai-review[bot]");
    assert.match(github.comments[0].body, /yarn\.lock/);
    assert.equal(github.reviews.length, 1);
    assert.deepEqual(github.reviews[0].comments.map((c) => [c.path, c.line]), [["src/app.ts", 2]]);
    assert.match(github.reviews[0].body, /src\/unchanged\.ts/);
    assert.equal(github.checkRuns.length, 1);
    assert.equal(github.checkRuns[0].conclusion, "neutral");
    const sent = JSON.stringify(agent.sessions.map((s) => s.body));
    assert.doesNotMatch(sent, /yarn\.lock|left-pad/);
    assert.equal(github.issuedTokens.length, 1);

    // A second instance on the same KV file reviews with the token the first one cached.
    const second = await spawnService(env, { viaTask: true });
    services.push(second);
    await review(second.url, 2);
    assert.equal(github.issuedTokens.length, 1, "one token for both instances");
  } finally {
    for (const s of services) await s.stop("SIGTERM");
    await agent.close();
    await github.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
