/**
 * A fake SSE review agent on loopback, programmable per session, that counts open streams.
 *
 * @module
 */
import type { AgentFinding, AgentSessionRequest } from "../../review/agent_events.ts";

/**
 * One `POST /sessions` the fake received.
 *
 * @example
 * ```ts
 * const key = agent.sessions[0].headers.get("idempotency-key");
 * ```
 */
export interface FakeAgentSession {
  /** The request body as JSON. */
  body: AgentSessionRequest;
  headers: Headers;
  /** 0-based count of sessions seen before this one. */
  index: number;
  /** `Date.now()` when the request arrived. */
  receivedAt: number;
}

/**
 * What a script gets besides the session.
 *
 * @example
 * ```ts
 * const script: AgentScript = (_s, ctl) => {
 *   ctl.signal.addEventListener("abort", () => console.log("client left"));
 *   return sseResponse([{ event: "done" }]);
 * };
 * ```
 */
export interface ScriptControl {
  /** Aborted when the client disconnects or the fake closes. */
  signal: AbortSignal;
}

/**
 * Answers one session; a `text/event-stream` answer counts as an open stream until it ends.
 *
 * @example
 * ```ts
 * const flaky: AgentScript = (s, ctl) =>
 *   s.index === 0 ? new Response("busy", { status: 503 }) : reviewScript()(s, ctl);
 * ```
 */
export type AgentScript = (
  session: FakeAgentSession,
  ctl: ScriptControl,
) => Response | Promise<Response>;

/**
 * A running fake agent.
 *
 * @example
 * ```ts
 * const agent = await startFakeAgent();
 * try {
 *   // point the code under test at agent.url
 * } finally {
 *   await agent.close();
 * }
 * ```
 */
export interface FakeAgent {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Every `POST /sessions` received, in order. */
  sessions: FakeAgentSession[];
  /** Sessions streaming right now. */
  readonly open: number;
  /** Most sessions ever open at once per owner (`"owner/name"` -> `"owner"`). */
  maxOpenByRepoOwner: Map<string, number>;
  /** Most sessions ever open at once for one review id (more than 1 means a duplicate). */
  maxOpenByReview: Map<string, number>;
  /** Most sessions ever open at once. */
  readonly maxOpen: number;
  /** Replaces the script for sessions that arrive from now on. */
  setScript(script: AgentScript): void;
  /** Aborts open streams and resolves once the server is fully shut down. */
  close(): Promise<void>;
}

/**
 * One SSE frame for {@link sseResponse}: a comment, or an event whose string `data` is written raw.
 *
 * @example
 * ```ts
 * const frames: SseFrame[] = [{ comment: "hb", delayMs: 100 }, { event: "finding", data: "{bad" }];
 * ```
 */
export interface SseFrame {
  event?: string;
  data?: unknown;
  comment?: string;
  delayMs?: number;
}

const encoder = new TextEncoder();

function frame(f: SseFrame): string {
  if (f.comment !== undefined) return `: ${f.comment}\n\n`;
  const data = typeof f.data === "string" ? f.data : JSON.stringify(f.data ?? {});
  return `${f.event ? `event: ${f.event}\n` : ""}data: ${data}\n\n`;
}

/**
 * An SSE response writing `frames`, each after its delay. With `holdUntil` it waits for the
 * promise before the `done` frame (or before closing); `endWithoutDone` drops `done` frames;
 * `chunkBytes` splits the bytes into chunks of that size. Writing stops when the client leaves.
 *
 * @example
 * ```ts
 * const response = sseResponse(
 *   [{ event: "summary", data: { text: "ok" } }, { event: "done", data: {} }],
 *   { sessionId: "s-1", chunkBytes: 1 },
 * );
 * ```
 */
export function sseResponse(
  events: SseFrame[],
  options: {
    holdUntil?: Promise<void>;
    sessionId?: string;
    endWithoutDone?: boolean;
    chunkBytes?: number;
  } = {},
): Response {
  const frames = options.endWithoutDone ? events.filter((f) => f.event !== "done") : events;
  let cancelled = false;
  let wake: () => void = () => {};
  const cancelledSignal = new Promise<void>((r) => wake = r);
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      cancelledSignal.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      try {
        const held = frames.findIndex((f) => f.event === "done");
        const before = held >= 0 && options.holdUntil ? frames.slice(0, held) : frames;
        const after = held >= 0 && options.holdUntil ? frames.slice(held) : [];
        const write = async (list: SseFrame[]) => {
          for (const f of list) {
            if (f.delayMs) await sleep(f.delayMs);
            if (cancelled) return;
            const bytes = encoder.encode(frame(f));
            const step = options.chunkBytes ?? bytes.length;
            for (let i = 0; i < bytes.length && !cancelled; i += step) {
              controller.enqueue(bytes.slice(i, i + step));
            }
          }
        };
        await write(before);
        if (options.holdUntil) await Promise.race([options.holdUntil, cancelledSignal]);
        if (cancelled) return;
        await write(after);
        if (!cancelled) controller.close();
      } catch {
        // The client went away while we wrote.
      }
    },
    cancel() {
      cancelled = true;
      wake();
    },
  });
  const headers: Record<string, string> = { "content-type": "text/event-stream" };
  if (options.sessionId) headers["x-session-id"] = options.sessionId;
  return new Response(body, { headers });
}

/**
 * The findings {@link reviewScript} sends by default: one warning, one critical.
 *
 * @example
 * ```ts
 * assert.deepEqual(result.findings, DEFAULT_FINDINGS);
 * ```
 */
export const DEFAULT_FINDINGS: AgentFinding[] = [
  {
    severity: "warning",
    file_path: "src/app.ts",
    line_number: 2,
    title: "eval on input",
    description: "Evaluating request input runs arbitrary code.",
    suggestion: "Parse the input instead.",
    agent_type: "security",
  },
  {
    severity: "critical",
    file_path: "src/app.ts",
    line_number: null,
    title: "Secret in code",
    description: "A credential is committed.",
    agent_type: "security",
  },
];

/**
 * A script that streams a status, the findings, a summary and `done`, with session id
 * `session-1`; `delayMs` delays the first frame.
 *
 * @example
 * ```ts
 * const agent = await startFakeAgent(reviewScript({ findings: [], summary: "Nothing to say" }));
 * ```
 */
export function reviewScript(
  opts: { findings?: AgentFinding[]; summary?: string; delayMs?: number } = {},
): AgentScript {
  return () =>
    sseResponse([
      { event: "status", data: { message: "reviewing" }, delayMs: opts.delayMs },
      ...(opts.findings ?? DEFAULT_FINDINGS).map((f) => ({ event: "finding", data: f })),
      { event: "summary", data: { text: opts.summary ?? "Looks mostly fine" } },
      { event: "done", data: {} },
    ], { sessionId: "session-1" });
}

/**
 * A script whose first session streams its frames up to `done` and then waits for `release()`;
 * later sessions finish at once. For tests that need one review to stay running.
 *
 * @example
 * ```ts
 * const { script, release } = holdFirstSession();
 * const agent = await startFakeAgent(script);
 * // ... assert while the first session is open, then:
 * release();
 * ```
 */
export function holdFirstSession(
  frames: SseFrame[] = [{ event: "done", data: {} }],
): { script: AgentScript; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  return {
    script: (s) => sseResponse(frames, { holdUntil: s.index === 0 ? gate : undefined }),
    release,
  };
}

/**
 * Starts the fake agent on a free loopback port; `POST /sessions` runs the current script.
 *
 * @example
 * ```ts
 * const agent = await startFakeAgent(reviewScript());
 * await agent.close();
 * ```
 */
export function startFakeAgent(script: AgentScript = reviewScript()): Promise<FakeAgent> {
  let current = script;
  const sessions: FakeAgentSession[] = [];
  const maxOpenByRepoOwner = new Map<string, number>();
  const openByOwner = new Map<string, number>();
  const maxOpenByReview = new Map<string, number>();
  const openByReview = new Map<string, number>();
  let open = 0;
  let maxOpen = 0;
  const live = new Set<AbortController>();

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/sessions") {
      return new Response("not found", { status: 404 });
    }
    const receivedAt = Date.now();
    let body: AgentSessionRequest;
    try {
      body = await req.json();
    } catch {
      return new Response("body is not JSON", { status: 400 });
    }
    const session = { body, headers: req.headers, index: sessions.length, receivedAt };
    sessions.push(session);
    const ctl = new AbortController();
    live.add(ctl);
    const response = await current(session, { signal: ctl.signal });
    if (!response.body || !response.headers.get("content-type")?.includes("event-stream")) {
      live.delete(ctl);
      return response;
    }
    const owner = body.repo.split("/")[0];
    open++;
    maxOpen = Math.max(maxOpen, open);
    const n = (openByOwner.get(owner) ?? 0) + 1;
    openByOwner.set(owner, n);
    maxOpenByRepoOwner.set(owner, Math.max(maxOpenByRepoOwner.get(owner) ?? 0, n));
    const r = (openByReview.get(body.reviewId) ?? 0) + 1;
    openByReview.set(body.reviewId, r);
    maxOpenByReview.set(body.reviewId, Math.max(maxOpenByReview.get(body.reviewId) ?? 0, r));
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      open--;
      openByOwner.set(owner, (openByOwner.get(owner) ?? 1) - 1);
      openByReview.set(body.reviewId, (openByReview.get(body.reviewId) ?? 1) - 1);
      live.delete(ctl);
    };
    const reader = response.body.getReader();
    const counted = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            finish();
            controller.close();
          } else controller.enqueue(value);
        } catch (error) {
          finish();
          controller.error(error);
        }
      },
      async cancel(reason) {
        finish();
        ctl.abort();
        await reader.cancel(reason).catch(() => {});
      },
    });
    ctl.signal.addEventListener("abort", () => {
      finish();
      reader.cancel().catch(() => {});
    });
    return new Response(counted, { headers: response.headers });
  });

  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    sessions,
    get open() {
      return open;
    },
    maxOpenByRepoOwner,
    maxOpenByReview,
    get maxOpen() {
      return maxOpen;
    },
    setScript(s) {
      current = s;
    },
    async close() {
      for (const ctl of live) ctl.abort();
      await server.shutdown();
    },
  });
}
