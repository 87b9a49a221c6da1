/**
 * Attacks on installation tokens (shared through KV, renewed, dropped, revoked, never shown) and
 * on the App's other webhook events: `/review` commands and installation changes.
 */
import assert from "node:assert/strict";
import { sign } from "@octokit/webhooks-methods";
import { createGitHubAppAuth } from "../review/github_app.ts";
import { startFakeGitHub } from "./fakes/github.ts";
import {
  allLogs,
  APP_ID,
  commentPayload,
  example,
  INSTALLATION,
  KEYS,
  openPayload,
  openPull,
  OWNER,
  settled,
  withApp,
} from "./github_app_helpers.ts";
import { sha, waitFor, WEBHOOK_SECRET } from "./harness.ts";

/** An agent that holds every session until the attempt aborts it. */
const holdingScript = () => (_s: unknown, ctl: { signal: AbortSignal }) =>
  new Promise<Response>((resolve) =>
    ctl.signal.addEventListener("abort", () => resolve(new Response(null, { status: 499 })), {
      once: true,
    })
  );

Deno.test("attack auth (fixed): a redelivered `/review cancel` no longer stops a review started after it; was: `/review cancel` stops a review started after it (a newer push)", async () => {
  await withApp({ script: holdingScript() }, async (h) => {
    const first = await openPull(h, 1, sha(10));
    await waitFor("the first session", () => h.agent.sessions.length === 1 || undefined);
    const cancel = commentPayload(h, "/review cancel", "OWNER", 1);
    const res = await h.sendWebhook("issue_comment", cancel, { deliveryId: "cancel-1" });
    assert.deepEqual(res.body, { status: "cancelled", stopped: 1 });
    await h.waitForStatus(first, ["cancelled"]);

    // The author pushes again: a fresh review of the new head starts.
    h.github.setPull({ owner: OWNER, repo: "service", number: 1, headSha: sha(11) });
    const pushed = await h.sendWebhook("pull_request", openPayload(1, sha(11), "synchronize"));
    const second = pushed.body.reviewId as string;
    await waitFor("the second session", () => h.agent.sessions.length === 2 || undefined);

    // GitHub redelivers the old cancel comment (same delivery, same comment).
    const again = await h.sendWebhook("issue_comment", cancel, { deliveryId: "cancel-1" });
    await new Promise((r) => setTimeout(r, 200));
    const review = await h.review(second);
    assert.equal(
      review.status,
      "running",
      `the redelivered cancel answered ${JSON.stringify(again.body)} and the newer review is ` +
        `${review.status} (${review.errorMessage})`,
    );
  });
});

Deno.test("attack auth (withstood): a revoked installation token (401) is dropped and the review recovers with a new one; no token is logged or shown", async () => {
  await withApp({}, async (h) => {
    await settled(h, await openPull(h, 2));
    const old = h.github.issuedTokens[0].token;
    // Uninstalled and installed again with the same id: every old token answers 401.
    h.github.uninstall(INSTALLATION);
    h.github.install(OWNER, INSTALLATION);
    const id = await openPull(h, 3);
    const review = await settled(h, id);
    assert.equal(review.status, "completed");
    assert.equal(h.github.issuedTokens.length, 2, "one new token");
    const fresh = h.github.issuedTokens[1].token;
    const stored = await h.kv.get<{ token: string }>(["github_installation_tokens", INSTALLATION]);
    assert.equal(stored.value?.token, fresh);
    const shown = JSON.stringify(await h.api("GET", `/reviews/${id}`)) +
      JSON.stringify(await h.api("GET", "/reviews?limit=50")) + allLogs(h);
    assert.ok(!shown.includes(old) && !shown.includes(fresh), "a token leaked");
    assert.doesNotMatch(shown, /ghs_/);
  });
});

Deno.test("attack auth (withstood): a token due for renewal (within 5 minutes of expiry) is renewed, not used", async () => {
  // Tokens live 5 minutes and 1.5 s: good for about 1.5 s, then due.
  await withApp({ app: { tokenTtlMs: 5 * 60_000 + 1_500 } }, async (h) => {
    await settled(h, await openPull(h, 4));
    assert.equal(h.github.issuedTokens.length, 1);
    await new Promise((r) => setTimeout(r, 2_600));
    await settled(h, await openPull(h, 5));
    assert.equal(h.github.issuedTokens.length, 2, "renewed once");
    const stored = await h.kv.get<{ token: string }>(["github_installation_tokens", INSTALLATION]);
    assert.equal(stored.value?.token, h.github.issuedTokens[1].token);
  });
});

Deno.test("attack auth (withstood): two App auths on one KV share one token; forget on either drops it for both", async () => {
  const gh = await startFakeGitHub();
  const kv = await Deno.openKv(":memory:");
  try {
    gh.enableApp({ appId: APP_ID, publicKeyPem: KEYS.publicKey });
    gh.install(OWNER, INSTALLATION);
    const make = () =>
      createGitHubAppAuth({ kv, appId: APP_ID, privateKey: KEYS.privateKey, baseUrl: gh.url });
    const a = make();
    const b = make();
    const t1 = await a.installationToken(INSTALLATION);
    const t2 = await b.installationToken(INSTALLATION);
    assert.equal(t1, t2);
    assert.equal(gh.issuedTokens.length, 1);
    await a.forget(INSTALLATION, OWNER);
    const t3 = await b.installationToken(INSTALLATION);
    assert.notEqual(t3, t1);
    assert.equal(gh.issuedTokens.length, 2);
    // Many concurrent asks of one instance share one request.
    await a.forget(INSTALLATION);
    const many = await Promise.all(
      Array.from({ length: 20 }, () => a.installationToken(INSTALLATION)),
    );
    assert.equal(new Set(many).size, 1);
    assert.equal(gh.issuedTokens.length, 3);
    // Neither a bad installation id nor an error message carries a secret.
    await assert.rejects(() => a.installationToken(-1), /positive integer/);
    gh.uninstall(INSTALLATION);
    await a.forget(INSTALLATION);
    const error = await a.installationToken(INSTALLATION).catch((e) => e as Error);
    assert.ok(error instanceof Error);
    assert.ok(!error.message.includes("BEGIN") && !/ghs_|eyJ/.test(error.message), error.message);
  } finally {
    kv.close();
    await gh.close();
  }
});

Deno.test("attack auth (withstood): unsigned or wrongly signed commands and installation events do nothing", async () => {
  await withApp({}, async (h) => {
    await settled(h, await openPull(h, 7));
    const key = ["github_installation_tokens", INSTALLATION];
    const deleted = example("installation", "deleted");
    (deleted.installation as { id: number }).id = INSTALLATION;
    for (const secret of [null, "wrong-secret"]) {
      const r1 = await h.sendWebhook("installation", deleted, { secret });
      assert.equal(r1.status, 401);
      const r2 = await h.sendWebhook("issue_comment", commentPayload(h, "/review", "OWNER", 7), {
        secret,
      });
      assert.equal(r2.status, 401);
    }
    // A body changed after signing (the signature is of the original).
    const payload = commentPayload(h, "/review", "NONE", 7);
    const raw = JSON.stringify(payload);
    const tampered = await fetch(`${h.url}/webhooks/github`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "issue_comment",
        "x-github-delivery": crypto.randomUUID(),
        "x-hub-signature-256": await sign(WEBHOOK_SECRET, raw),
      },
      body: raw.replace('"NONE"', '"OWNER"'),
    });
    assert.equal(tampered.status, 401);
    await tampered.body?.cancel();
    assert.notEqual((await h.kv.get(key)).value, null, "the token was dropped by a forgery");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(h.agent.sessions.length, 1);
  });
});

Deno.test("attack auth (withstood): /review only from owners, members and collaborators, only on open pull requests; hostile bodies and redeliveries start nothing new", async () => {
  await withApp({}, async (h) => {
    await settled(h, await openPull(h, 8));
    const sessions = () => h.agent.sessions.length;
    const before = sessions();
    const ignored = [
      commentPayload(h, "/review", "CONTRIBUTOR", 8),
      commentPayload(h, "/review", "FIRST_TIME_CONTRIBUTOR", 8),
      commentPayload(h, "/review", "NONE", 8),
      commentPayload(h, "/review", "MANNEQUIN", 8),
      commentPayload(h, "/review", "member", 8),
      commentPayload(h, "/review", "OWNER", 8, { onIssue: true }),
      commentPayload(h, "/review", "OWNER", 8, { state: "closed" }),
      commentPayload(h, "/review please", "OWNER", 8),
      commentPayload(h, "/reviewer", "OWNER", 8),
      commentPayload(h, "please /review", "OWNER", 8),
      commentPayload(h, "`/review`", "OWNER", 8),
      commentPayload(h, "> /review", "OWNER", 8),
      commentPayload(h, "/review cancel all", "OWNER", 8),
    ];
    for (const p of ignored) {
      const res = await h.sendWebhook("issue_comment", p);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, "ignored", JSON.stringify([p.comment.body, res.body]));
    }
    // Wrong types and shapes: refused or ignored, never a 500.
    const odd: unknown[] = [
      { action: "created", comment: { body: "/review" } },
      { action: "created", comment: { body: null } },
      { action: "created", comment: { body: ["/review"] } },
      { action: "created", comment: "x" },
      { action: "created" },
      null,
      [],
      "/review",
      { ...commentPayload(h, "/review", "OWNER", 8), issue: { number: -1, state: "open" } },
      {
        ...commentPayload(h, "/review", "OWNER", 8),
        repository: { full_name: "../../x", owner: { id: 1, login: "x", type: "User" } },
      },
    ];
    for (const p of odd) {
      const res = await h.sendWebhook("issue_comment", p);
      assert.ok(res.status === 200 || res.status === 400, `${res.status} ${JSON.stringify(p)}`);
      assert.notEqual(res.body.status, "queued");
    }
    // A real command, then its redelivery after it completed: nothing new, one 👀.
    const asked = commentPayload(h, "\n\n  /REVIEW  \n with notes", "COLLABORATOR", 8);
    const r1 = await h.sendWebhook("issue_comment", asked, { deliveryId: "cmd-8" });
    assert.equal(r1.status, 202, JSON.stringify(r1.body));
    await settled(h, r1.body.reviewId as string);
    const r2 = await h.sendWebhook("issue_comment", asked, { deliveryId: "cmd-8" });
    const r3 = await h.sendWebhook("issue_comment", asked, { deliveryId: "cmd-8-other" });
    assert.equal(r2.body.reviewId, r1.body.reviewId);
    assert.equal(r3.body.reviewId, r1.body.reviewId);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sessions(), before + 1);
    assert.equal(h.github.reactions.length, 1);
    assert.equal(h.github.comments.filter((c) => c.author === "ai-review[bot]").length, 1);
  });
});

Deno.test("attack auth (withstood): installation changes drop the token exactly when they must", async () => {
  await withApp({}, async (h) => {
    await settled(h, await openPull(h, 9));
    const key = ["github_installation_tokens", INSTALLATION];
    const send = async (event: string, action: string) => {
      const p = example(event, action) ?? { action };
      (p.installation as { id: number }).id = INSTALLATION;
      return await h.sendWebhook(event, p);
    };
    assert.equal((await send("installation", "created")).body.status, "noted");
    assert.notEqual((await h.kv.get(key)).value, null);
    assert.equal((await send("installation_repositories", "added")).body.status, "noted");
    assert.notEqual((await h.kv.get(key)).value, null);
    assert.equal((await send("installation_repositories", "removed")).body.status, "forgotten");
    assert.equal((await h.kv.get(key)).value, null);
    // A later review gets a new token and still works.
    await settled(h, await openPull(h, 10));
    assert.equal(h.github.issuedTokens.length, 2);
  });
});
