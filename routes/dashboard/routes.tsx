/**
 * The dashboard, served by the service at `/`: sign-in, overview, review pages, the live stream
 * and the actions (cancel, retry, owner limit). Pages are server-rendered with `hono/jsx`; with
 * `?fragment=1` a page answers only its live region, which the browser script swaps in.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { csrf } from "hono/csrf";
import type { Child } from "hono/jsx";
import { z } from "zod";
import { ReviewStatusSchema } from "../../kv/records.ts";
import type { ReviewDeps } from "../../review/deps.ts";
import type { LiveFeed } from "../../review/live_feed.ts";
import {
  changeOwnerLimit,
  ownersOverview,
  retry,
  retryId,
  serviceStats,
} from "../../review/operations.ts";
import { cancel, listPublicReviews, readReview, readReviewEvents } from "../../review/service.ts";
import { ownerFilterOf, OwnerFilterText, RepoText } from "../filters.ts";
import { OwnerParamsSchema } from "../owners.ts";
import { APP_CSS, APP_JS } from "./assets.ts";
import { diffAnchor, githubWebBase } from "./format.ts";
import { Page } from "./layout.tsx";
import { Overview } from "./overview.tsx";
import { ReviewDetail } from "./review_page.tsx";
import { requireCsrfToken, requireSession, type SessionEnv, signIn, signOut } from "./session.ts";
import { liveStream } from "./live.ts";

const FiltersSchema = z.object({
  owner: OwnerFilterText.optional().catch(undefined),
  repo: RepoText.optional().catch(undefined),
  status: ReviewStatusSchema.optional().catch(undefined),
  cursor: z.string().max(1000).optional().catch(undefined),
  done: z.string().max(40).optional().catch(undefined),
});

/** Wrong sign-ins one instance takes per window before it answers 429 to every sign-in. */
const MAX_WRONG_SIGN_INS = 20;
const SIGN_IN_WINDOW_MS = 60_000;

/** What an action did, shown once on the page it returns to (fixed texts, never echoed input). */
const NOTICES: Record<string, string> = {
  cancelled: "Review cancelled.",
  stopping: "Review asked to stop; it ends within a few seconds.",
  finished: "That review had already finished.",
  retried: "Retry queued: it takes a slot like any other review.",
  retry_exists: "This review was retried already; that retry is shown.",
  not_retryable: "Only failed or cancelled reviews (not superseded ones) can be retried.",
  limit: "Limit changed.",
  bad_limit: "A limit is a whole number from 0 to 100.",
  not_found: "No such review.",
};

/** Only paths of this site are followed back after an action (as the browser will read them). */
function backTo(value: unknown, fallback: string): string {
  if (typeof value !== "string" || value.length > 1500 || !value.startsWith("/")) return fallback;
  const origin = "http://dashboard.invalid";
  let url: URL;
  try {
    url = new URL(value, origin);
  } catch {
    return fallback;
  }
  // `/.//evil`, `/\evil` and the like normalise to another host or to `//host`: refused.
  if (url.origin !== origin || url.pathname.startsWith("//") || /[\\\s]/.test(value)) {
    return fallback;
  }
  return `${url.pathname}${url.search}`;
}

function withNotice(path: string, code: string): string {
  const url = new URL(path, "http://dashboard.invalid");
  url.searchParams.set("done", code);
  return `${url.pathname}${url.search}`;
}

/** The notice of an action's `done` code, if it is one of ours. */
function noticeOf(code: string | undefined): string | undefined {
  return code !== undefined && Object.hasOwn(NOTICES, code) ? NOTICES[code] : undefined;
}

/**
 * The dashboard routes.
 *
 * @example
 * ```ts
 * app.route("/", dashboardRoutes(deps, feed));
 * ```
 */
export function dashboardRoutes(deps: ReviewDeps, feed: LiveFeed): Hono<SessionEnv> {
  const app = new Hono<SessionEnv>();
  const page = requireSession(deps, "page");
  const refused = { since: deps.clock(), count: 0 };
  const forms = [
    bodyLimit({ maxSize: 16 * 1024, onError: (c) => c.text("form too large", 413) }),
    csrf(),
    requireSession(deps, "data"),
    requireCsrfToken(),
  ] as const;
  const webBase = githubWebBase(deps.config.GITHUB_API_URL);
  const disabled = () =>
    deps.config.BACKEND_AUTH_TOKEN
      ? undefined
      : "The dashboard needs BACKEND_AUTH_TOKEN to be set.";
  const render = (
    title: string,
    csrfToken: string,
    live: string,
    fragment: boolean,
    body: Child,
  ) =>
    fragment ? <>{body}</> : (
      <Page title={title} csrf={csrfToken} live={live}>
        {body}
      </Page>
    );

  app.use("*", async (c, next) => {
    await next();
    if (c.res.headers.get("content-type")?.startsWith("text/html")) {
      c.header("Cache-Control", "no-store");
      c.header("X-Frame-Options", "DENY");
      c.header(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
      );
    }
  });

  app.get(
    "/ui/app.css",
    (c) => c.body(APP_CSS, 200, { "content-type": "text/css; charset=utf-8" }),
  );
  app.get(
    "/ui/app.js",
    (c) => c.body(APP_JS, 200, { "content-type": "text/javascript; charset=utf-8" }),
  );

  const loginPage = (message?: string) => (
    <Page title="Sign in">
      <form method="post" action="/login" id="login" class="login">
        <h1>Sign in</h1>
        <p class="muted">Paste the service's BACKEND_AUTH_TOKEN.</p>
        {message ? <p class="error" role="alert">{message}</p> : null}
        <input
          type="password"
          name="token"
          autocomplete="current-password"
          required
          aria-label="token"
        />
        <button type="submit">Sign in</button>
      </form>
    </Page>
  );

  app.get("/login", (c) => c.html(loginPage(disabled())));
  app.post(
    "/login",
    bodyLimit({ maxSize: 8 * 1024, onError: (c) => c.text("too large", 413) }),
    csrf(),
    async (c) => {
      if (disabled()) return c.html(loginPage(disabled()), 503);
      // Wrong guesses are counted per instance; past the bound every sign-in waits for the window.
      const now = deps.clock();
      if (now - refused.since > SIGN_IN_WINDOW_MS) Object.assign(refused, { since: now, count: 0 });
      if (refused.count >= MAX_WRONG_SIGN_INS) {
        const wait = Math.ceil((refused.since + SIGN_IN_WINDOW_MS - now) / 1000);
        return c.html(loginPage("Too many wrong tokens: try again in a minute."), 429, {
          "retry-after": String(Math.max(1, wait)),
        });
      }
      // Counted before the check, so a burst of parallel guesses meets the bound too.
      refused.count++;
      const form = await c.req.parseBody();
      if (typeof form.token === "string" && await signIn(c, deps, form.token.trim())) {
        refused.count = Math.max(0, refused.count - 1);
        deps.log("info", "dashboard sign-in");
        return c.redirect("/", 303);
      }
      deps.log("warn", "dashboard sign-in refused", { why: "wrong token", recent: refused.count });
      // A short pause makes guessing slower without holding anything.
      await new Promise((r) => setTimeout(r, 250));
      return c.html(loginPage("That token is not right."), 401);
    },
  );
  app.post("/logout", ...forms, async (c) => {
    await signOut(c, deps);
    return c.redirect("/login", 303);
  });

  app.get("/", page, async (c) => {
    const filters = FiltersSchema.parse(c.req.query());
    const owner = ownerFilterOf(filters.owner);
    let listing;
    try {
      listing = await listPublicReviews(deps, {
        owner,
        status: filters.status,
        repo: filters.repo,
        limit: 25,
        cursor: filters.cursor,
      });
    } catch {
      // A stale cursor: start from the newest again.
      listing = await listPublicReviews(deps, {
        owner,
        status: filters.status,
        repo: filters.repo,
        limit: 25,
      });
      filters.cursor = undefined;
    }
    const [stats, owners] = await Promise.all([serviceStats(deps), ownersOverview(deps)]);
    const self = c.req.path +
      (new URL(c.req.url).search.replace(/([?&])(fragment|done)=[^&]*/g, "$1").replace(
        /[?&]+$/,
        "",
      ));
    const body = (
      <Overview
        stats={stats}
        owners={owners}
        reviews={listing.reviews}
        nextCursor={listing.cursor}
        filters={filters}
        csrf={c.get("session").csrf}
        webBase={webBase}
        now={deps.clock()}
        self={self}
        notice={noticeOf(filters.done)}
      />
    );
    return c.html(
      render("Reviews", c.get("session").csrf, "/ui/live", c.req.query("fragment") === "1", body),
    );
  });

  app.get("/ui/reviews/:id", page, async (c) => {
    const id = c.req.param("id");
    const [review, events] = await Promise.all([readReview(deps, id), readReviewEvents(deps, id)]);
    if (!review) {
      return c.html(
        <Page title="Not found" csrf={c.get("session").csrf}>
          <p>
            No review {id}. <a href="/">Back</a>
          </p>
        </Page>,
        404,
      );
    }
    const pull = `${webBase}/${review.repo}/pull/${review.pullNumber}/files`;
    const findingLinks = await Promise.all(
      (review.findings ?? []).map(async (f) =>
        `${pull}#${await diffAnchor(f.file_path, f.line_start)}`
      ),
    );
    const next = retryId(review.retry?.root ?? review.id, (review.retry?.number ?? 0) + 1);
    const retried = review.status === "failed" || review.status === "cancelled"
      ? await readReview(deps, next)
      : null;
    const done = c.req.query("done");
    const body = (
      <ReviewDetail
        review={review}
        events={events?.events ?? []}
        findingLinks={findingLinks}
        retriedBy={retried && retried.retry?.of === review.id ? retried.id : undefined}
        csrf={c.get("session").csrf}
        webBase={webBase}
        now={deps.clock()}
        notice={noticeOf(done)}
      />
    );
    const live = `/ui/live?review=${encodeURIComponent(id)}`;
    return c.html(
      render(
        `${review.repo} #${review.pullNumber}`,
        c.get("session").csrf,
        live,
        c.req.query("fragment") === "1",
        body,
      ),
    );
  });

  app.get(
    "/ui/live",
    requireSession(deps, "data"),
    (c) => liveStream(c, feed, c.req.query("review")),
  );

  app.post("/ui/reviews/:id/cancel", ...forms, async (c) => {
    const form = await c.req.parseBody();
    const id = c.req.param("id");
    const outcome = await cancel(deps, id, "cancelled from the dashboard", 1_500);
    deps.log("info", "review cancel requested", {
      reviewId: id,
      by: "dashboard",
      outcome: outcome.kind,
    });
    const back = backTo(form.back, `/ui/reviews/${encodeURIComponent(id)}`);
    return c.redirect(withNotice(back, outcome.kind), 303);
  });

  app.post("/ui/reviews/:id/retry", ...forms, async (c) => {
    const form = await c.req.parseBody();
    const outcome = await retry(deps, c.req.param("id"));
    if (outcome.kind === "not_found" || outcome.kind === "not_retryable") {
      return c.redirect(withNotice(backTo(form.back, "/"), outcome.kind), 303);
    }
    const code = outcome.kind === "created" ? "retried" : "retry_exists";
    return c.redirect(
      withNotice(`/ui/reviews/${encodeURIComponent(outcome.review.id)}`, code),
      303,
    );
  });

  app.post("/ui/owners/:type/:id/limit", ...forms, async (c) => {
    const form = await c.req.parseBody();
    const owner = OwnerParamsSchema.safeParse(c.req.param());
    const back = backTo(form.back, "/");
    const raw = String(form.limit ?? "");
    const limit = raw === "default"
      ? null
      : /^\d{1,3}$/.test(raw) && Number(raw) <= 100
      ? Number(raw)
      : undefined;
    if (!owner.success || limit === undefined) {
      return c.redirect(withNotice(back, "bad_limit"), 303);
    }
    await changeOwnerLimit(deps, owner.data, limit);
    return c.redirect(withNotice(back, "limit"), 303);
  });
  return app;
}
