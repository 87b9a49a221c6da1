/**
 * The dashboard's page shell: head, header with the sign-out form, and the live region the
 * browser script refreshes when the feed says something changed.
 *
 * @module
 */
import type { Child } from "hono/jsx";

/**
 * A full page. `live` is the URL of the feed this page listens to (absent: a static page).
 *
 * @example
 * ```tsx
 * <Page title="Reviews" csrf={csrf} live="/ui/live"><p>…</p></Page>
 * ```
 */
export function Page(props: {
  title: string;
  csrf?: string;
  live?: string;
  children: Child;
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>{props.title} · AI review</title>
        <link rel="stylesheet" href="/ui/app.css" />
        <script src="/ui/app.js" defer></script>
      </head>
      <body data-live={props.live}>
        <header>
          <a href="/" class="brand">AI review</a>
          <span class="live-state" id="live-state" title="live updates">
            {props.live ? "connecting…" : ""}
          </span>
          {props.csrf
            ? (
              <form method="post" action="/logout" class="inline">
                <input type="hidden" name="_csrf" value={props.csrf} />
                <button type="submit" class="link">Sign out</button>
              </form>
            )
            : null}
        </header>
        <main id="live">{props.children}</main>
      </body>
    </html>
  );
}

/**
 * A form that posts one action with the session's CSRF token (a button in a table row).
 *
 * @example
 * ```tsx
 * <ActionForm action="/ui/reviews/r1/cancel" csrf={csrf} label="Cancel" confirm="Cancel r1?" />
 * ```
 */
export function ActionForm(props: {
  action: string;
  csrf: string;
  label: string;
  confirm?: string;
  back?: string;
}) {
  return (
    <form method="post" action={props.action} class="inline" data-confirm={props.confirm}>
      <input type="hidden" name="_csrf" value={props.csrf} />
      {props.back ? <input type="hidden" name="back" value={props.back} /> : null}
      <button type="submit">{props.label}</button>
    </form>
  );
}
