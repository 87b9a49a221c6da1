/**
 * The live feed behind the dashboard: every commit's changes reach it through the effects seam
 * (in this process), and a watch on the change mark brings other instances' changes. Subscribers
 * (one per open dashboard stream) get small notices and re-read what they show.
 *
 * @module
 */
import type { Changes } from "../kv/changes.ts";
import { type ChangeMark, touchChangeMark, watchChangeMark } from "../kv/live.ts";
import type { ReviewStatus } from "../kv/records.ts";
import type { Logger } from "./deps.ts";

/** What a subscriber hears. */
export type LiveNotice =
  /** Reviews written by this instance (a status change, or progress while running). */
  | { kind: "reviews"; reviews: Array<{ id: string; status: ReviewStatus; owner: string }> }
  /** Another instance changed something; what is not known here. */
  | { kind: "remote" }
  /** The service is stopping: streams end, so the server can shut down. */
  | { kind: "closing" };

/** The feed. */
export interface LiveFeed {
  /** The effects listener: hands a commit's changes to subscribers and bumps the mark. */
  observe(changes: Changes): void;
  /** Adds a subscriber; returns the function that removes it. */
  subscribe(listener: (notice: LiveNotice) => void): () => void;
  /** Subscribers right now (bounded by the dashboard). */
  readonly subscribers: number;
  /** Whether the feed was closed (the service is stopping): no new subscribers. */
  readonly closed: boolean;
  /** Stops the watch and any pending mark write. */
  close(): Promise<void>;
}

/** Options of {@link createLiveFeed}. */
export interface LiveFeedOptions {
  kv: Deno.Kv;
  instance: string;
  clock: () => number;
  log: Logger;
  /** Least time between two writes of the change mark by this instance. */
  markEveryMs?: number;
}

/**
 * Builds the feed. The change mark is written at most every `markEveryMs` (200 ms) whatever the
 * load, and watched only while someone is subscribed.
 *
 * @example
 * ```ts
 * const feed = createLiveFeed({ kv, instance, clock: Date.now, log });
 * const stop = feed.subscribe((notice) => console.log(notice.kind));
 * feed.observe(changes);
 * stop();
 * ```
 */
export function createLiveFeed(options: LiveFeedOptions): LiveFeed {
  const { kv, instance, log } = options;
  const markEveryMs = options.markEveryMs ?? 200;
  const listeners = new Set<(notice: LiveNotice) => void>();
  let markTimer: ReturnType<typeof setTimeout> | undefined;
  let marking: Promise<void> | undefined;
  let lastMark = -Infinity;
  let watcher: ReadableStreamDefaultReader<ChangeMark | null> | undefined;
  let closed = false;

  const send = (notice: LiveNotice) => {
    for (const listener of listeners) {
      try {
        listener(notice);
      } catch (error) {
        log("warn", "live feed subscriber failed", { error: String(error) });
      }
    }
  };

  const writeMark = () => {
    markTimer = undefined;
    lastMark = options.clock();
    marking = touchChangeMark(kv, instance, lastMark).catch((error) =>
      log("warn", "live change mark not written", { error: String(error) })
    ).finally(() => marking = undefined);
  };

  const scheduleMark = () => {
    if (closed || markTimer !== undefined) return;
    const wait = Math.max(0, lastMark + markEveryMs - options.clock());
    markTimer = setTimeout(writeMark, wait);
  };

  const startWatch = () => {
    const reader = watchChangeMark(kv).getReader();
    watcher = reader;
    (async () => {
      let first = true;
      while (true) {
        const { done, value } = await reader.read();
        if (done) return;
        // The first value is the mark as it stands: nothing new yet.
        if (first) {
          first = false;
          continue;
        }
        if (value && value.instance !== instance) send({ kind: "remote" });
      }
    })().catch((error) => {
      if (!closed && watcher === reader) {
        log("warn", "live change watch ended", { error: String(error) });
        watcher = undefined;
      }
    });
  };

  const stopWatch = () => {
    const reader = watcher;
    watcher = undefined;
    reader?.cancel().catch(() => {});
  };

  return {
    observe(changes) {
      if (changes.reviews.length === 0) return;
      const reviews = changes.reviews.map(({ review }) => ({
        id: review.id,
        status: review.status,
        owner: `${review.owner.type}:${review.owner.id}`,
      }));
      if (listeners.size) send({ kind: "reviews", reviews });
      scheduleMark();
    },
    subscribe(listener) {
      if (closed) {
        listener({ kind: "closing" });
        return () => {};
      }
      listeners.add(listener);
      if (!watcher && !closed) startWatch();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) stopWatch();
      };
    },
    get subscribers() {
      return listeners.size;
    },
    get closed() {
      return closed;
    },
    async close() {
      closed = true;
      clearTimeout(markTimer);
      markTimer = undefined;
      stopWatch();
      send({ kind: "closing" });
      listeners.clear();
      await marking;
    },
  };
}
