import assert from "node:assert/strict";
import { checkReporter } from "./check_publish.ts";
import { ReviewError } from "./errors.ts";
import type { GitHubClient } from "./github.ts";

/** A GitHub client that records check-run calls; `createFails` makes creates fail (ambiguously). */
function fakeChecks(createFails = 0) {
  const calls: string[] = [];
  const runs: Array<{ id: number; externalId?: string }> = [];
  const github = {
    findCheckRun(_repo: string, _sha: string, _name: string, externalId: string) {
      calls.push("find");
      const run = runs.find((r) => r.externalId === externalId);
      return Promise.resolve(run ? { id: run.id, url: "" } : null);
    },
    createCheckRun(_repo: string, run: { externalId?: string }) {
      calls.push("create");
      // The run is made even when the answer is lost.
      runs.push({ id: runs.length + 1, externalId: run.externalId });
      if (createFails-- > 0) {
        throw new ReviewError("GitHub checks.create timed out", {
          retryable: true,
          reason: "github_error",
          ambiguous: true,
        });
      }
      return Promise.resolve({ id: runs.length, url: "" });
    },
    updateCheckRun() {
      calls.push("update");
      return Promise.resolve();
    },
  } as unknown as GitHubClient;
  return { github, calls, runs };
}

const review = { id: "r1", repo: "octo/app", headSha: "a".repeat(40) };
const log = () => {};

Deno.test("check run: a review's first session creates its run without looking for one", async () => {
  const { github, calls, runs } = fakeChecks();
  const check = checkReporter(github, review, { log, fresh: true });
  check.start();
  check.finish({ findings: [], threshold: "info" });
  await check.idle();
  assert.deepEqual(calls, ["create", "update"]);
  assert.equal(runs.length, 1);
});

Deno.test("check run: a later session looks first and adopts the run an earlier one made", async () => {
  const { github, calls, runs } = fakeChecks();
  const first = checkReporter(github, review, { log, fresh: true });
  first.start();
  await first.idle();
  const again = checkReporter(github, review, { log });
  again.start();
  again.finish({ findings: [], threshold: "info" });
  await again.idle();
  assert.deepEqual(calls, ["create", "find", "update"]);
  assert.equal(runs.length, 1);
});

Deno.test("check run: after a create whose answer was lost, a fresh session looks before creating again", async () => {
  const { github, calls, runs } = fakeChecks(1);
  const check = checkReporter(github, review, { log, fresh: true });
  check.start();
  check.finish({ findings: [], threshold: "info" });
  await check.idle();
  assert.deepEqual(calls, ["create", "find", "update"]);
  assert.equal(runs.length, 1, "never a second run");
});
