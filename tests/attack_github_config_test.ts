/**
 * Attacks on `.github/ai-review.yml`: hostile YAML (huge, aliases, deep, wrong types), globs that
 * cost exponential time, ignored files reaching the agent, and the note naming the bad field.
 */
import assert from "node:assert/strict";
import { DEFAULT_REPO_CONFIG, parseRepoConfig, selectDiff } from "../review/repo_config.ts";
import { reviewScript } from "./fakes/agent.ts";
import {
  BASE,
  ON_DIFF,
  openPayload,
  openPull,
  OWNER,
  settled,
  withApp,
} from "./github_app_helpers.ts";

Deno.test("attack config (withstood, was a defect): a glob with many stars, which takes exponential time on a long file name, is refused", () => {
  // 13 stars: picomatch's regex would take seconds on a 31-character name, blocking the event loop.
  const config = parseRepoConfig(`paths:\n  ignore: ['${"*a".repeat(12)}*b']\n`);
  assert.match(config.problems.join("\n"), /paths\.ignore\[0\]: expected a simpler glob/);
  // The most a glob may have (3 stars per segment, 2 `**`) stays fast on a 255-character name.
  const worst = parseRepoConfig("paths:\n  ignore: ['**/*a*a*b/**']\n");
  assert.deepEqual(worst.problems, []);
  const long = "a".repeat(255);
  const started = performance.now();
  selectDiff(`diff --git a/${long} b/${long}\n@@ -0,0 +1 @@\n+x\n`, worst.config);
  assert.ok(performance.now() - started < 200, "the worst allowed glob is fast");
});

Deno.test("attack config (withstood): hostile YAML is refused quickly with the defaults and a problem", () => {
  const bomb = [
    "a: &a ['x','x','x','x','x','x','x','x','x','x']",
    ...Array.from(
      { length: 9 },
      (_, i) =>
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${
          Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(",")
        }]`,
    ),
  ].join("\n");
  const cases: Array<[string, RegExp]> = [
    [bomb, /alias|unknown field/],
    ["[".repeat(30_000), /invalid YAML|could not be read/],
    ["- ".repeat(30_000) + "x", /invalid YAML|could not be read|top level/],
    ["x".repeat(70_000), /larger than 64 KiB/],
    ["é".repeat(33_000), /larger than 64 KiB/],
    ["max_files: 'ten'\n", /max_files/],
    ["max_files: 1e400\n", /max_files/],
    ["max_diff_bytes: 1.5e9\n", /max_diff_bytes/],
    ["min_severity: [critical]\n", /min_severity/],
    ["paths: {ignore: 5}\n", /paths\.ignore/],
    ["paths: {ignore: [1, 2]}\n", /paths\.ignore\[0\]/],
    ["paths: ['src/**']\n", /paths/],
    ["__proto__: {enabled: false}\n", /__proto__/],
    ["enabled: !!js/function 'return false'\n", /enabled|tag|invalid/i],
    ["enabled: yes\n", /enabled/],
    ["a: 1\na: 2\n", /invalid YAML/],
    ["instructions: " + "y".repeat(9_000) + "\n", /instructions/],
  ];
  for (const [text, problem] of cases) {
    const started = performance.now();
    const parsed = parseRepoConfig(text);
    const ms = performance.now() - started;
    assert.ok(ms < 1_500, `${text.slice(0, 30)} took ${ms} ms`);
    assert.deepEqual(parsed.config, DEFAULT_REPO_CONFIG, text.slice(0, 40));
    assert.ok(parsed.problems.length > 0, text.slice(0, 40));
    assert.match(parsed.problems.join("\n"), problem, text.slice(0, 40));
    assert.ok(parsed.problems.join("").length < 10_000);
  }
});

/** A diff with files the agent must never see, each carrying a canary. */
const HIDDEN_DIFF = [
  ["src/app.ts", "VISIBLE_CANARY"],
  ["package-lock.json", "CANARY_LOCK"],
  ["web/Package-Lock.JSON", "CANARY_LOCK_CASE"],
  ["dist/bundle.js", "CANARY_DIST"],
  ["a/b/node_modules/x/index.js", "CANARY_NODE_MODULES"],
  ["src/app.ts b/yarn.lock", "CANARY_SPACE_B"],
  ["secrets/prod.env", "CANARY_SECRETS"],
  [".hidden/secrets/key.pem", "CANARY_DOT_SECRETS"],
  ["docs/readme.md", "CANARY_NOT_INCLUDED"],
].map(([path, canary]) =>
  [
    `diff --git a/${path} b/${path}`,
    `--- a/${path}`,
    `+++ b/${path}`,
    "@@ -0,0 +1,1 @@",
    `+const x = "${canary}";`,
  ].join("\n")
).concat([
  // A rename into an ignored directory, and Git's quoted path of an ignored file.
  [
    "diff --git a/src/moved.ts b/vendor/moved.ts",
    "similarity index 90%",
    "rename from src/moved.ts",
    "rename to vendor/moved.ts",
    "@@ -1 +1,2 @@",
    " a",
    '+const y = "CANARY_RENAMED";',
  ].join("\n"),
  [
    'diff --git "a/build/\\303\\251t\\303\\251.js" "b/build/\\303\\251t\\303\\251.js"',
    "new file mode 100644",
    "--- /dev/null",
    '+++ "b/build/\\303\\251t\\303\\251.js"',
    "@@ -0,0 +1 @@",
    '+const z = "CANARY_QUOTED";',
  ].join("\n"),
]).join("\n") + "\n";

Deno.test("attack config (withstood): ignored and not-included files never reach the agent, neither in the diff nor in the files list", async () => {
  await withApp({ script: reviewScript({ findings: [] }) }, async (h) => {
    h.github.setFile(
      OWNER,
      "service",
      BASE,
      ".github/ai-review.yml",
      "paths:\n  ignore: ['secrets/']\n  include: ['src/**', 'secrets/**', '**/*.js', '**/*.json', '**/*.ts', '**/*.pem', '**/*.lock']\n",
    );
    const id = await openPull(h, 1, undefined, HIDDEN_DIFF);
    await settled(h, id);
    assert.equal(h.agent.sessions.length, 1);
    const sent = JSON.stringify(h.agent.sessions[0].body);
    assert.match(sent, /VISIBLE_CANARY/);
    for (const canary of sent.match(/CANARY_[A-Z_]+/g) ?? []) {
      assert.fail(`${canary} reached the agent`);
    }
    assert.doesNotMatch(sent, /package-lock|node_modules|secrets\/|dist\/|vendor\/|readme/i);
    assert.match(h.github.comments[0].body, /Not reviewed/);
  });
});

Deno.test("attack config (withstood): an invalid file gives the defaults and the comment names the field; a huge file is named too", async () => {
  await withApp({ script: reviewScript({ findings: [ON_DIFF] }) }, async (h) => {
    h.github.setFile(
      OWNER,
      "service",
      BASE,
      ".github/ai-review.yml",
      "enabled: false\nfail_on: urgent\npaths:\n  ignore: 5\nmax_flies: 3\n",
    );
    const id = await openPull(h, 2);
    const review = await settled(h, id);
    assert.equal(review.status, "completed", "the defaults (enabled) were used");
    const body = h.github.comments[0].body;
    for (const field of ["fail_on", "paths.ignore", "max_flies", "max_files"]) {
      assert.ok(body.includes(field), `the comment does not name ${field}`);
    }
    // Over 64 KiB (GitHub serves it; the service refuses to read it).
    h.github.setFile(OWNER, "other", BASE, ".github/ai-review.yml", "# x\n".repeat(20_000));
    h.github.setPull({ owner: OWNER, repo: "other", number: 3, headSha: "c".repeat(40) });
    const res = await h.sendWebhook("pull_request", {
      ...openPayload(3, "c".repeat(40)),
      repository: {
        full_name: `${OWNER}/other`,
        name: "other",
        owner: { id: 41, login: OWNER, type: "Organization" },
      },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await settled(h, res.body.reviewId as string);
    const other = h.github.comments.find((c) => c.repo === "other");
    assert.match(other?.body ?? "", /64 KiB/);
  });
});

Deno.test("attack config (fixed): a refused read of the file (403: the installation has not accepted the Contents permission) fails every review instead of using the defaults with a note", async () => {
  await withApp({ env: { MAX_ATTEMPTS: "2" } }, async (h) => {
    h.github.failNext("contents", 403, 10);
    const id = await openPull(h, 4);
    const review = await h.waitForStatus(id, ["completed", "failed"]);
    assert.equal(
      review.status,
      "completed",
      `the review ${review.status}: ${review.errorMessage}`,
    );
    assert.match(h.github.comments[0].body, /ai-review\.yml/);
  });
});
