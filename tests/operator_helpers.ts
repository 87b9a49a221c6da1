/**
 * Helpers of the operator suites (operators, dashboard, attack_operators): a cookie-keeping
 * dashboard client, held agent sessions, a KV that can be made to hang, an audit of an owner's
 * counters against its index keys, SSE stream readers and signed `/review` comments.
 */
import assert from "node:assert/strict";
import examples from "@octokit/webhooks-examples" with { type: "json" };
import { keys } from "../kv/keys.ts";
import type { Owner, OwnerState } from "../kv/records.ts";
import { type AgentScript, sseResponse } from "./fakes/agent.ts";
import { BACKEND_TOKEN, type Harness } from "./harness.ts";

/** A browser-ish client: keeps the session cookie, sends a same-origin Origin on form posts. */
export function browser(h: Harness) {
  let cookie = "";
  const request = async (
    method: string,
    path: string,
    form?: Record<string, string>,
    headers: Record<string, string> = {},
  ) => {
    const res = await fetch(`${h.url}${path}`, {
      method,
      redirect: "manual",
      headers: {
        ...(cookie ? { cookie } : {}),
        ...(form ? { "content-type": "application/x-www-form-urlencoded", origin: h.url } : {}),
        ...headers,
      },
      body: form ? new URLSearchParams(form) : undefined,
    });
    const set = res.headers.get("set-cookie");
    if (set) cookie = set.split(";")[0];
    return { res, text: await res.text(), setCookie: set };
  };
  return {
    request,
    get cookie() {
      return cookie;
    },
    set cookie(value: string) {
      cookie = value;
    },
    async signIn() {
      const { res } = await request("POST", "/login", { token: BACKEND_TOKEN });
      assert.equal(res.status, 303);
    },
    async csrf(path = "/") {
      const { text } = await request("GET", path);
      return /name="_csrf" value="([^"]+)"/.exec(text)![1];
    },
  };
}

/** Every session streams `status` frames and then waits until `release()`. */
export function heldSessions(message = "reading the diff"): {
  script: AgentScript;
  release: () => void;
} {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  return {
    script: () =>
      sseResponse([
        { event: "status", data: { message } },
        { event: "summary", data: { text: "ok" } },
        { event: "done", data: {} },
      ], { holdUntil: gate }),
    release,
  };
}

/** A script whose sessions each last a random 20–120 ms and complete. */
export function shortSessions(): AgentScript {
  return () =>
    sseResponse([
      { event: "status", data: { message: "working" }, delayMs: 20 + Math.random() * 100 },
      { event: "summary", data: { text: "ok" } },
      { event: "done", data: {} },
    ]);
}

/** A KV handle whose reads and writes can be made to hang (and released again). */
export interface HangingKv {
  wrap: (kv: Deno.Kv) => Deno.Kv;
  hang(): void;
  release(): void;
}

/** Wraps a KV handle: after `hang()` every get, set, list and commit waits for `release()`. */
export function hangingKv(): HangingKv {
  let gate: Promise<void> | undefined;
  let open: () => void = () => {};
  const wait = async () => {
    while (gate) await gate;
  };
  const wrapAtomic = (op: Deno.AtomicOperation): Deno.AtomicOperation => {
    const proxy: Deno.AtomicOperation = new Proxy(op, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (prop === "commit") return async () => (await wait(), target.commit());
        return (...args: unknown[]) => {
          const out = value.apply(target, args);
          return out === target ? proxy : out;
        };
      },
    });
    return proxy;
  };
  return {
    wrap(kv) {
      return new Proxy(kv, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target);
          if (typeof value !== "function") return value;
          if (prop === "get" || prop === "getMany" || prop === "set" || prop === "delete") {
            return async (...args: unknown[]) => {
              await wait();
              return value.apply(target, args);
            };
          }
          if (prop === "list") {
            return (...args: unknown[]) => {
              if (!gate) return value.apply(target, args);
              return (async function* () {
                await wait();
                yield* value.apply(target, args) as Deno.KvListIterator<unknown>;
              })();
            };
          }
          if (prop === "atomic") return () => wrapAtomic(target.atomic());
          return value.bind(target);
        },
      });
    },
    hang() {
      gate ??= new Promise<void>((r) => open = r);
    },
    release() {
      gate = undefined;
      open();
    },
  };
}

/** An owner's counters next to what its index keys say (inflight and pending entries). */
export async function ownerAudit(kv: Deno.Kv, owner: Pick<Owner, "type" | "id">) {
  const state = (await kv.get<OwnerState>(keys.owner(owner))).value;
  const inflight = (await Array.fromAsync(kv.list<Owner>({ prefix: keys.inflightAll() })))
    .filter((e) => e.value.type === owner.type && e.value.id === owner.id).length;
  const pending = (await Array.fromAsync(kv.list({ prefix: keys.pendingOf(owner) }))).length;
  return {
    counted: { active: state?.active ?? 0, pending: state?.pending ?? 0 },
    real: { active: inflight, pending },
    limit: state?.limit,
  };
}

/** Reads an SSE response's text in the background; `until` waits for a pattern (bounded). */
export function sseReader(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let ended = false;
  const pumping = (async () => {
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
    } catch {
      // Cancelled or reset: the stream has ended all the same.
    }
    ended = true;
  })();
  const poll = async (ok: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!ok() && Date.now() < deadline) await sleep(10);
    return ok();
  };
  return {
    get text() {
      return text;
    },
    get ended() {
      return ended;
    },
    /** Whether `pattern` shows up within `ms`. */
    until: (pattern: RegExp, ms: number) => poll(() => pattern.test(text), ms),
    /** Whether the stream ends within `ms`. */
    endsWithin: (ms: number) => poll(() => ended, ms),
    async cancel() {
      await reader.cancel().catch(() => {});
      await pumping;
    },
  };
}

type Example = { name: string; examples: Record<string, unknown>[] };

/** A signed-able `issue_comment` payload: `body` by a member on pull request `number`. */
export function commentPayload(options: {
  ownerId: number;
  number: number;
  commentId: number;
  body: string;
}): Record<string, unknown> {
  const group = (examples as unknown as Example[]).find((e) => e.name === "issue_comment")!;
  const payload = structuredClone(group.examples.find((e) => e.action === "created")!) as {
    issue: Record<string, unknown>;
    comment: Record<string, unknown>;
    repository: Record<string, unknown>;
    installation?: unknown;
  };
  const login = `owner${options.ownerId}`;
  payload.issue.number = options.number;
  payload.issue.state = "open";
  payload.issue.pull_request = {
    url: `https://api.github.com/repos/${login}/service/pulls/${options.number}`,
  };
  payload.comment.id = options.commentId;
  payload.comment.body = options.body;
  payload.comment.author_association = "MEMBER";
  payload.repository.full_name = `${login}/service`;
  payload.repository.name = "service";
  payload.repository.owner = {
    ...(payload.repository.owner as Record<string, unknown>),
    id: options.ownerId,
    login,
    type: "Organization",
  };
  delete payload.installation;
  return payload as unknown as Record<string, unknown>;
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `fn`'s result, or `"timeout"` when it takes longer than `ms` (the work is not cancelled). */
export async function within<T>(ms: number, fn: () => Promise<T>): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
