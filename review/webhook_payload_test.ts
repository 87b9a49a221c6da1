import assert from "node:assert/strict";
import { examplePayload } from "../tests/harness.ts";
import { classifyWebhook, ownerOf, reviewFromPayload } from "./webhook_payload.ts";

Deno.test("classifyWebhook: real example payloads", async (t) => {
  for (const action of ["opened", "synchronize", "reopened", "ready_for_review"]) {
    await t.step(`${action} with an open, non-draft PR starts a review`, () => {
      const payload = examplePayload(action) as {
        pull_request: { state: string; draft: boolean };
      };
      payload.pull_request.state = "open";
      payload.pull_request.draft = false;
      assert.equal(classifyWebhook("pull_request", payload).kind, "review");
    });
  }
  await t.step("other actions are ignored", () => {
    const d = classifyWebhook("pull_request", examplePayload("labeled"));
    assert.deepEqual(d, { kind: "ignore", reason: "action labeled is not reviewed" });
  });
  await t.step("other events are ignored", () => {
    assert.equal(classifyWebhook("issues", {}).kind, "ignore");
  });
  await t.step("a triggering payload without a head sha is invalid", () => {
    const payload = examplePayload("opened") as { pull_request: { head: unknown } };
    delete payload.pull_request.head;
    assert.equal(classifyWebhook("pull_request", payload).kind, "invalid");
  });
  await t.step("a payload without action is invalid", () => {
    assert.equal(classifyWebhook("pull_request", []).kind, "invalid");
  });
});

Deno.test("ownerOf and reviewFromPayload map the repository owner and PR", () => {
  const payload = examplePayload("opened") as Record<string, unknown> & {
    repository: { owner: { type: string } };
  };
  const decision = classifyWebhook("pull_request", {
    ...payload,
    pull_request: { ...(payload.pull_request as object), state: "open", draft: false },
  });
  assert.equal(decision.kind, "review");
  if (decision.kind !== "review") return;
  const owner = ownerOf(decision.payload);
  const expectedType = payload.repository.owner.type === "Organization" ? "org" : "user";
  assert.equal(owner.type, expectedType);
  const review = reviewFromPayload(decision.payload, { id: "r1", deliveryId: "d1", now: 5 });
  assert.equal(review.status, "pending");
  assert.equal(review.repo, decision.payload.repository.full_name);
  assert.equal(review.headSha, decision.payload.pull_request.head.sha);
  assert.equal(review.owner.id, String(decision.payload.repository.owner.id));
  assert.equal(review.createdAt, 5);
});
