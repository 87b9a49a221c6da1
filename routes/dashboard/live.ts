/**
 * The dashboard's live stream (`GET /ui/live`): server-sent events telling a page that what it
 * shows changed. Bounded: at most {@link MAX_STREAMS} per process, each for at most
 * {@link MAX_STREAM_MS} (the browser reconnects by itself), with a heartbeat every 15 s.
 *
 * @module
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { LiveFeed, LiveNotice } from "../../review/live_feed.ts";

/** Open streams per process at most. */
export const MAX_STREAMS = 100;
/** A stream's longest life; the browser's EventSource reconnects and re-reads once. */
export const MAX_STREAM_MS = 5 * 60_000;
const HEARTBEAT_MS = 15_000;
/** A write a client does not take within this long ends its stream (it stopped reading). */
const WRITE_WAIT_MS = 10_000;

async function bounded(stream: { abort(): void }, write: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      stream.abort();
      resolve();
    }, WRITE_WAIT_MS);
  });
  await Promise.race([write, stuck]).finally(() => clearTimeout(timer));
}

/**
 * Streams change notices to one page: all of them, or only those about `reviewId` (and any
 * from other instances, which say nothing more precise).
 *
 * @example
 * ```ts
 * app.get("/ui/live", (c) => liveStream(c, feed, c.req.query("review")));
 * ```
 */
export function liveStream(c: Context, feed: LiveFeed, reviewId?: string): Response {
  if (feed.closed) return c.json({ error: "the service is stopping" }, 503);
  if (feed.subscribers >= MAX_STREAMS) {
    return c.json({ error: "too many live dashboards open; try again later" }, 503);
  }
  return streamSSE(c, async (stream) => {
    let changed: string[] | null = null;
    let closing = false;
    let wake: () => void = () => {};
    const relevant = (notice: LiveNotice) =>
      notice.kind === "remote" || !reviewId ||
      (notice.kind === "reviews" && notice.reviews.some((r) => r.id === reviewId));
    const unsubscribe = feed.subscribe((notice) => {
      if (notice.kind === "closing") {
        closing = true;
        // A client that stopped reading may hold a write: end the stream under it.
        stream.abort();
        return wake();
      }
      if (!relevant(notice)) return;
      changed ??= [];
      // Ids are hints for the page; a bounded list is enough.
      if (notice.kind === "reviews" && changed.length < 50) {
        changed.push(...notice.reviews.map((r) => r.id).slice(0, 50 - changed.length));
      }
      wake();
    });
    stream.onAbort(() => wake());
    const deadline = Date.now() + MAX_STREAM_MS;
    try {
      await bounded(stream, stream.writeSSE({ event: "hello", data: "{}", retry: 1_000 }));
      while (!closing && !stream.aborted && !stream.closed && Date.now() < deadline) {
        const rest = Math.min(HEARTBEAT_MS, deadline - Date.now());
        // Checked and armed in one synchronous step, so no notice slips in between.
        if (!changed && !closing) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, rest);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        if (closing || stream.aborted || stream.closed) break;
        if (changed) {
          const ids: string[] = changed;
          changed = null;
          await bounded(
            stream,
            stream.writeSSE({ event: "change", data: JSON.stringify({ ids }) }),
          );
        } else {
          await bounded(stream, stream.write(": heartbeat\n\n"));
        }
      }
    } finally {
      unsubscribe();
    }
  });
}
