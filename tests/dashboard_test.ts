/**
 * The dashboard through the real server: sign-in and its cookie, CSRF on every action, the
 * overview and review pages, the actions, and the live stream.
 */
import assert from "node:assert/strict";
import { reviewScript } from "./fakes/agent.ts";
import { browser, heldSessions } from "./operator_helpers.ts";
import { BACKEND_TOKEN, waitFor, withHarness } from "./harness.ts";

Deno.test("sign-in: wrong token refused, right token gives an HttpOnly SameSite=Strict cookie, never the token", async () => {
  await withHarness("kv-queue", {}, async (h) => {
    const b = browser(h);
    const first = await b.request("GET", "/");
    assert.equal(first.res.status, 303);
    assert.equal(first.res.headers.get("location"), "/login");
    const login = await b.request("GET", "/login");
    assert.equal(login.res.status, 200);
    assert.match(login.text, /<form method="post" action="\/login" id="login"/);

    const wrong = await b.request("POST", "/login", { token: "nope" });
    assert.equal(wrong.res.status, 401);
    assert.equal(wrong.setCookie, null);
    assert.match(wrong.text, /That token is not right/);

    const right = await b.request("POST", "/login", { token: BACKEND_TOKEN });
    assert.equal(right.res.status, 303);
    assert.match(right.setCookie!, /^ai_review_session=[\w-]{40,};/);
    assert.match(right.setCookie!, /HttpOnly/);
    assert.match(right.setCookie!, /SameSite=Strict/);
    assert.doesNotMatch(right.setCookie!, /Secure/, "plain http on loopback");
    assert.ok(!right.setCookie!.includes(BACKEND_TOKEN));

    const overview = await b.request("GET", "/");
    assert.equal(overview.res.status, 200);
    assert.ok(!overview.text.includes(BACKEND_TOKEN), "the token is never rendered");
    assert.match(overview.res.headers.get("content-security-policy")!, /script-src 'self'/);

    // Behind an https proxy the cookie is Secure.
    const b2 = browser(h);
    const secure = await b2.request("POST", "/login", { token: BACKEND_TOKEN }, {
      "x-forwarded-proto": "https",
    });
    assert.match(secure.setCookie!, /Secure/);

    // Sign-out ends the session everywhere: the old cookie no longer works.
    const csrf = await b.csrf();
    const stale = b.cookie;
    const out = await b.request("POST", "/logout", { _csrf: csrf });
    assert.equal(out.res.status, 303);
    const after = await fetch(`${h.url}/`, { headers: { cookie: stale }, redirect: "manual" });
    await after.body?.cancel();
    assert.equal(after.status, 303);
  });
});

Deno.test("actions need the session's CSRF token and a same-origin post", async () => {
  await withHarness(
    "kv-queue",
    { env: { MAX_CONCURRENT_PER_OWNER: "1" }, script: heldSessions().script },
    async (h) => {
      await h.openPull(1, 1);
      const waiting = (await h.openPull(1, 2)).body.reviewId as string;
      const b = browser(h);
      await b.signIn();
      const csrf = await b.csrf();
      const path = `/ui/reviews/${waiting}/cancel`;
      assert.equal((await b.request("POST", path, { _csrf: "forged" })).res.status, 403);
      assert.equal((await b.request("POST", path, {})).res.status, 403);
      const crossSite = await b.request("POST", path, { _csrf: csrf }, {
        origin: "https://evil.example",
      });
      assert.equal(crossSite.res.status, 403);
      const anonymous = await fetch(`${h.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: h.url },
        body: new URLSearchParams({ _csrf: csrf }),
        redirect: "manual",
      });
      await anonymous.body?.cancel();
      assert.equal(anonymous.status, 401);
      assert.equal((await h.review(waiting)).status, "pending", "nothing refused had an effect");

      const ok = await b.request("POST", path, { _csrf: csrf, back: "/" });
      assert.equal(ok.res.status, 303);
      assert.equal(ok.res.headers.get("location"), "/?done=cancelled");
      assert.equal((await h.review(waiting)).status, "cancelled");
      // An action never sends the browser off-site.
      const retried = await b.request("POST", `/ui/reviews/${waiting}/retry`, {
        _csrf: csrf,
        back: "//evil.example/",
      });
      assert.equal(
        retried.res.headers.get("location"),
        `/ui/reviews/${waiting}-retry-1?done=retried`,
      );
    },
  );
});

Deno.test("overview and review page: owners with slots, filters, findings linked to the diff", async () => {
  await withHarness("kv-queue", { script: reviewScript() }, async (h) => {
    const id = (await h.openPull(2, 9)).body.reviewId as string;
    await h.waitForStatus(id, ["completed"]);
    const b = browser(h);
    await b.signIn();
    const overview = await b.request("GET", "/?status=completed");
    assert.match(overview.text, new RegExp(`data-review="${id}" data-status="completed"`));
    assert.match(
      overview.text,
      /href="https:\/\/github.com\/owner2\/service\/pull\/9"|owner2\/service\/pull\/9/,
    );
    const none = await b.request("GET", "/?status=failed");
    assert.doesNotMatch(none.text, new RegExp(`data-review="${id}"`));
    assert.match(none.text, /No reviews match/);

    const page = await b.request("GET", `/ui/reviews/${id}`);
    assert.equal(page.res.status, 200);
    assert.match(page.text, /Findings \(\d+\)/);
    assert.match(page.text, /\/files#diff-[0-9a-f]{64}R\d+/);
    assert.match(page.text, /<b>pending<\/b>/);
    const fragment = await b.request("GET", `/ui/reviews/${id}?fragment=1`);
    assert.doesNotMatch(fragment.text, /<html/);
    assert.match(fragment.text, /Findings/);
    assert.equal((await b.request("GET", "/ui/reviews/nope")).res.status, 404);

    // The limit form changes the owner's limit.
    const csrf = await b.csrf();
    const set = await b.request("POST", "/ui/owners/org/2/limit", {
      _csrf: csrf,
      limit: "7",
      back: "/",
    });
    assert.equal(set.res.headers.get("location"), "/?done=limit");
    assert.equal((await h.api("GET", "/owners/org/2")).body.limit, 7);
    const bad = await b.request("POST", "/ui/owners/org/2/limit", {
      _csrf: csrf,
      limit: "-3",
      back: "/",
    });
    assert.equal(bad.res.headers.get("location"), "/?done=bad_limit");
    const owners = await b.request("GET", "/");
    assert.match(owners.text, /data-owner="org:2"/);
    assert.match(owners.text, /own limit/);
  });
});

Deno.test("live stream: a review starting shows up as a change within a second", async () => {
  const gate = heldSessions();
  await withHarness("kv-queue", { script: gate.script, env: { FAST_PATH: "true" } }, async (h) => {
    const b = browser(h);
    await b.signIn();
    const anonymous = await fetch(`${h.url}/ui/live`);
    await anonymous.body?.cancel();
    assert.equal(anonymous.status, 401);
    const res = await fetch(`${h.url}/ui/live`, { headers: { cookie: b.cookie } });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const next = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}`);
        text += value;
      }
    };
    await next(/event: hello/);
    const sent = performance.now();
    const id = (await h.openPull(3, 1)).body.reviewId as string;
    await next(new RegExp(`event: change\\ndata: \\{"ids":\\[[^\\]]*"${id}"`));
    const latency = performance.now() - sent;
    assert.ok(latency < 1_000, `change seen after ${latency} ms`);
    await waitFor("running", async () => (await h.review(id)).status === "running" || undefined);
    gate.release();
    await reader.cancel();
    // The stream's subscription ends with the client.
    await waitFor("unsubscribed", () => h.service.feed.subscribers === 0 || undefined, 3_000);
  });
});
