/**
 * A fake SSE review agent on loopback, programmable per session, that counts open streams.
 */
import type { AgentFinding, AgentSessionRequest } from "../../review/agent_events.ts";

export interface FakeAgentSession {
  body: AgentSessionRequest;
  headers: Headers;
  index: number;
  /** `Date.now()` when the request arrived. */
  receivedAt: number;
}

export interface ScriptControl {
  signal: AbortSignal;
}

export type AgentScript = (
  session: FakeAgentSession,
  ctl: ScriptControl,
) => Response | Promise<Response>;

export interface FakeAgent {
  url: string;
  sessions: FakeAgentSession[];
  readonly open: number;
  maxOpenByRepoOwner: Map<string, number>;
  /** Most sessions ever open at once for one review id (more than 1 means a duplicate). */
  maxOpenByReview: Map<string, number>;
  readonly maxOpen: number;
  setScript(script: AgentScript): void;
  close(): Promise<void>;
}

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

/** An SSE response writing `frames` (each after its delay), optionally held open until `holdUntil`. */
export function sseResponse(
  frames: SseFrame[],
  options: { holdUntil?: Promise<void>; sessionId?: string; chunkBytes?: number } = {},
): Response {
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

/** A script that streams a status, the findings, a summary and `done`. */
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

/** Starts the fake agent; `POST /sessions` runs the current script. */
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
    const body = await req.json() as AgentSessionRequest;
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
