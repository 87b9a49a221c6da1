/**
 * A fake cloud agent on loopback speaking the `kilo` wire format: `GET
 * /trpc/initiateSessionAsync?input=…` answered by `data: <json>` frames, `POST
 * /trpc/interruptSession`, and the completion callback POSTed to `input.callbackUrl`.
 *
 * @module
 */

/**
 * One `initiateSessionAsync` the fake received.
 *
 * @example
 * ```ts
 * assert.equal(kilo.sessions[0].input.createdOnPlatform, "code-review");
 * ```
 */
export interface FakeKiloSession {
  /** The decoded `input` query parameter. */
  input: Record<string, unknown>;
  /** The raw query string, `?input=…`, for byte-exact comparisons. */
  search: string;
  headers: Headers;
  /** 0-based count of sessions seen before this one. */
  index: number;
  /** The cloud agent session id the fake assigned: `agent_1`, `agent_2`, … */
  sessionId: string;
  /** `Date.now()` when the request arrived. */
  receivedAt: number;
}

/**
 * One `interruptSession` call.
 *
 * @example
 * ```ts
 * assert.deepEqual(kilo.interrupts[0].body, { sessionId: "agent_1" });
 * ```
 */
export interface FakeKiloInterrupt {
  body: unknown;
  headers: Headers;
  receivedAt: number;
}

/**
 * What the cloud agent POSTs to `callbackUrl` (its `CallbackPayload`).
 *
 * @example
 * ```ts
 * const body: KiloCallbackBody = { sessionId: "agent_1", status: "failed", errorMessage: "oom" };
 * ```
 */
export interface KiloCallbackBody {
  sessionId: string;
  status: "completed" | "failed" | "interrupted";
  errorMessage?: string;
}

/**
 * One callback the fake POSTed: the answer's HTTP status, or the error when there was none.
 *
 * @example
 * ```ts
 * assert.equal(kilo.callbacks[0].httpStatus, 200);
 * ```
 */
export interface FakeKiloCallback {
  url: string;
  body: KiloCallbackBody;
  httpStatus?: number;
  error?: string;
}

/**
 * What a script gets besides the session.
 *
 * @example
 * ```ts
 * const script: KiloScript = (s, ctl) => {
 *   ctl.callback({ status: "failed", errorMessage: "no credits" }, { delayMs: 10 });
 *   return new Response("busy", { status: 503 });
 * };
 * ```
 */
export interface KiloScriptControl {
  /** The session's id (also on {@link FakeKiloSession}). */
  sessionId: string;
  /** Aborted with `"interrupted"`, `"client_left"` or `"closed"` when the stream must stop. */
  signal: AbortSignal;
  /** The remote session: it outlives the client and ends with `"interrupted"` or `"closed"`. */
  session: AbortSignal;
  /** POSTs the callback after `delayMs` (0 by default); resolves with the HTTP status, if any. */
  callback(
    body: Omit<KiloCallbackBody, "sessionId">,
    options?: { delayMs?: number },
  ): Promise<number | undefined>;
}

/**
 * Answers one session.
 *
 * @example
 * ```ts
 * const limited: KiloScript = () =>
 *   new Response("slow down", { status: 429, headers: { "retry-after": "7" } });
 * ```
 */
export type KiloScript = (
  session: FakeKiloSession,
  ctl: KiloScriptControl,
) => Response | Promise<Response>;

/**
 * One frame: `data` (an object is sent as JSON, a string raw) or a `comment`, after `delayMs`.
 *
 * @example
 * ```ts
 * const frames: KiloFrame[] = [{ comment: "ping" }, { data: "{not json" }, { data: "", delayMs: 5 }];
 * ```
 */
export interface KiloFrame {
  data?: unknown;
  comment?: string;
  delayMs?: number;
}

/**
 * A running fake cloud agent.
 *
 * @example
 * ```ts
 * const kilo = await startFakeKilo();
 * try {
 *   // point the code under test at kilo.url
 * } finally {
 *   await kilo.close();
 * }
 * ```
 */
export interface FakeKilo {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  sessions: FakeKiloSession[];
  interrupts: FakeKiloInterrupt[];
  callbacks: FakeKiloCallback[];
  /** Replaces the script for sessions that arrive from now on. */
  setScript(script: KiloScript): void;
  /** Ends open streams, cancels pending callbacks and shuts the server down. */
  close(): Promise<void>;
}

const encoder = new TextEncoder();
/** Resolves once `signal` has aborted. */
const ended = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
/** Resolves after `ms`, or at once when `signal` aborts. */
const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => (clearTimeout(timer), signal.removeEventListener("abort", done), resolve());
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
    if (signal.aborted) done();
  });
const frameText = (f: KiloFrame) =>
  f.comment !== undefined
    ? `: ${f.comment}\n\n`
    : `data: ${typeof f.data === "string" ? f.data : JSON.stringify(f.data ?? {})}\n\n`;

/**
 * The frames of a typical review in the real format: status, CLI session, one LLM call (with
 * usage), a partial and a final text, the GitHub tool call, and `complete`.
 *
 * @example
 * ```ts
 * const frames = kiloReviewFrames("agent_1");
 * ```
 */
export function kiloReviewFrames(sessionId: string): KiloFrame[] {
  // The CLI's own events (like `session_created`) come without the cloud session id.
  const kilocode = (payload: Record<string, unknown>, withId = true) => ({
    data: { streamEventType: "kilocode", ...(withId ? { sessionId } : {}), payload },
  });
  const metadata = {
    model: "anthropic/claude-sonnet-4",
    tokensIn: 1200,
    tokensOut: 340,
    cost: 0.0123,
    inferenceProvider: "Anthropic",
  };
  return [
    { data: { streamEventType: "status", sessionId, message: "Starting" } },
    kilocode({ event: "session_created", sessionId: "cli-uuid" }, false),
    kilocode({ say: "api_req_started", metadata }),
    { comment: "ping" },
    kilocode({ say: "text", content: "Reviewing src/ap", partial: true }),
    kilocode({ say: "text", content: "Reviewing src/app.ts", partial: false }),
    kilocode({
      ask: "use_mcp_server",
      metadata: { serverName: "github", toolName: "pull_request_review_write" },
    }),
    { data: { streamEventType: "complete", sessionId, exitCode: 0 } },
  ];
}

/**
 * An SSE response writing `frames` until `ctl.signal` aborts. `holdOpen` keeps the stream open
 * after the frames; on `"interrupted"` it writes an `interrupted` event and ends, as the real
 * agent does. `onEnd` learns why the stream ended (`"finished"` when all frames were written).
 *
 * @example
 * ```ts
 * const script: KiloScript = (_s, ctl) => kiloStream([{ data: "{bad" }], ctl, { holdOpen: true });
 * ```
 */
export function kiloStream(
  frames: KiloFrame[],
  ctl: KiloScriptControl,
  options: { holdOpen?: boolean; chunkBytes?: number; onEnd?: (why: string) => unknown } = {},
): Response {
  const { signal } = ctl;
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      const write = (text: string) => {
        const bytes = encoder.encode(text);
        const step = options.chunkBytes ?? bytes.length;
        for (let i = 0; i < bytes.length; i += step) controller.enqueue(bytes.slice(i, i + step));
      };
      try {
        for (const f of frames) {
          if (f.delayMs) await pause(f.delayMs, signal);
          if (signal.aborted) break;
          write(frameText(f));
        }
        if (options.holdOpen) await ended(signal);
        if (signal.reason === "interrupted") {
          const event = { streamEventType: "interrupted", reason: "Session interrupted" };
          write(frameText({ data: { ...event, sessionId: ctl.sessionId } }));
        }
        options.onEnd?.(signal.aborted ? String(signal.reason) : "finished");
        if (signal.reason !== "client_left") controller.close();
      } catch {
        // The client went away while we wrote.
      }
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

/**
 * A script streaming `frames` (by default {@link kiloReviewFrames}) and then, with `callback`,
 * POSTing the callback after its delay: status `"interrupted"` instead when the session was
 * interrupted. The callback also comes when the client left early: the real session goes on.
 *
 * @example
 * ```ts
 * const kilo = await startFakeKilo(kiloScript({ callback: { status: "completed", delayMs: 20 } }));
 * ```
 */
export function kiloScript(
  opts: {
    frames?: (sessionId: string) => KiloFrame[];
    holdOpen?: boolean;
    chunkBytes?: number;
    callback?: { status: KiloCallbackBody["status"]; errorMessage?: string; delayMs?: number };
  } = {},
): KiloScript {
  return (_session, ctl) =>
    kiloStream((opts.frames ?? kiloReviewFrames)(ctl.sessionId), ctl, {
      holdOpen: opts.holdOpen,
      chunkBytes: opts.chunkBytes,
      async onEnd(why) {
        const cb = opts.callback;
        if (!cb) return;
        // A held session goes on without its client until it is interrupted (or the fake closes).
        if (why === "client_left" && opts.holdOpen) await ended(ctl.session);
        if (ctl.session.reason === "closed") return;
        const interrupted = ctl.session.reason === "interrupted";
        const errorMessage = interrupted ? undefined : cb.errorMessage;
        const status = interrupted ? "interrupted" : cb.status;
        ctl.callback({ status, ...(errorMessage ? { errorMessage } : {}) }, {
          delayMs: cb.delayMs,
        });
      },
    });
}

/**
 * Starts the fake cloud agent on a free loopback port.
 *
 * @example
 * ```ts
 * const kilo = await startFakeKilo(kiloScript({ holdOpen: true }));
 * await kilo.close();
 * ```
 */
export function startFakeKilo(script: KiloScript = kiloScript()): Promise<FakeKilo> {
  let current = script;
  const sessions: FakeKiloSession[] = [];
  const interrupts: FakeKiloInterrupt[] = [];
  const callbacks: FakeKiloCallback[] = [];
  // Remote sessions by id, until interrupted; the fake's close ends those left.
  const running = new Map<string, AbortController>();
  const lifetime = new AbortController();
  const pending = new Set<Promise<unknown>>();

  const postCallback = async (session: FakeKiloSession, body: KiloCallbackBody, delayMs = 0) => {
    if (delayMs > 0) await pause(delayMs, lifetime.signal);
    const url = String(session.input.callbackUrl ?? "");
    if (lifetime.signal.aborted || !url) return undefined;
    const record: FakeKiloCallback = { url, body };
    callbacks.push(record);
    try {
      const response = await fetch(url, {
        method: "POST",
        // Like the real agent: its own content type, then the caller's headers over it.
        headers: {
          "Content-Type": "application/json",
          ...(session.input.callbackHeaders as Record<string, string> | undefined),
        },
        body: JSON.stringify(body),
        signal: lifetime.signal,
      });
      await response.body?.cancel();
      record.httpStatus = response.status;
    } catch (error) {
      record.error = String(error);
    }
    return record.httpStatus;
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method === "POST" && url.pathname === "/trpc/interruptSession") {
      let body: unknown;
      try {
        body = await req.json();
      } catch {
        return new Response("body is not JSON", { status: 400 });
      }
      interrupts.push({ body, headers: req.headers, receivedAt: Date.now() });
      const id = (body as { sessionId?: unknown } | null)?.sessionId;
      running.get(String(id))?.abort("interrupted");
      running.delete(String(id));
      return Response.json({ result: { data: { success: true } } });
    }
    if (req.method !== "GET" || url.pathname !== "/trpc/initiateSessionAsync") {
      return new Response("not found", { status: 404 });
    }
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(url.searchParams.get("input") ?? "");
    } catch {
      return new Response("input is not JSON", { status: 400 });
    }
    const index = sessions.length;
    const session: FakeKiloSession = {
      input,
      search: url.search,
      headers: req.headers,
      index,
      sessionId: `agent_${index + 1}`,
      receivedAt: Date.now(),
    };
    sessions.push(session);
    const remote = new AbortController();
    running.set(session.sessionId, remote);
    const ctl = new AbortController();
    remote.signal.addEventListener("abort", () => ctl.abort(remote.signal.reason), { once: true });
    const control: KiloScriptControl = {
      sessionId: session.sessionId,
      signal: ctl.signal,
      session: remote.signal,
      callback(body, options) {
        const sent = postCallback(
          session,
          { sessionId: control.sessionId, ...body },
          options?.delayMs,
        );
        pending.add(sent);
        sent.finally(() => pending.delete(sent));
        return sent;
      },
    };
    const response = await current(session, control);
    if (!response.body) return response;
    // Noticing the client leave stops the script's writer (Deno cancels the body we return).
    const reader = response.body.getReader();
    const watched = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(error);
        }
      },
      async cancel(reason) {
        ctl.abort("client_left");
        await reader.cancel(reason).catch(() => {});
      },
    });
    return new Response(watched, { status: response.status, headers: response.headers });
  });

  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    sessions,
    interrupts,
    callbacks,
    setScript(s) {
      current = s;
    },
    async close() {
      for (const remote of running.values()) remote.abort("closed");
      lifetime.abort();
      await Promise.allSettled([...pending]);
      await server.shutdown();
    },
  });
}
