/**
 * Runs the real service as a separate process (`deno task start` or the same `deno run` command),
 * for tests across processes. Its JSON log lines are kept for assertions.
 */

import { sign } from "@octokit/webhooks-methods";
import { BACKEND_TOKEN, WEBHOOK_SECRET } from "./harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const START_ARGS = [
  "run",
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "main.ts",
];

export interface ServiceProcess {
  url: string;
  pid: number;
  logs: Array<Record<string, unknown>>;
  child: Deno.ChildProcess;
  /** Sends a signal and resolves with the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  exited: Promise<Deno.CommandStatus>;
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
) {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buffer.indexOf("\n")) >= 0) {
      onLine(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
    }
  }
  if (buffer) onLine(buffer);
}

/**
 * Starts a service process and waits until it listens. `viaTask` runs `deno task start` itself;
 * otherwise the same command runs directly, so its pid is the server's (for `kill -9`).
 */
export async function spawnService(
  env: Record<string, string>,
  options: { viaTask?: boolean; timeoutMs?: number } = {},
): Promise<ServiceProcess> {
  const args = options.viaTask ? ["task", "start"] : START_ARGS;
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", PORT: "0", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: Array<Record<string, unknown>> = [];
  let resolveUrl!: (url: string) => void;
  const listening = new Promise<string>((r) => resolveUrl = r);
  const onLine = (line: string) => {
    try {
      const entry = JSON.parse(line);
      logs.push(entry);
      if (typeof entry.port === "number" && /listening/.test(entry.message)) {
        resolveUrl(`http://127.0.0.1:${entry.port}`);
      }
    } catch {
      logs.push({ raw: line });
    }
  };
  const drained = Promise.all([collect(child.stdout, onLine), collect(child.stderr, onLine)]);
  const exited = child.status.then(async (status) => {
    await drained;
    return status;
  });
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const url = await Promise.race([
    listening,
    exited.then((s) => {
      throw new Error(`service exited (${s.code}) before listening: ${JSON.stringify(logs)}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("service did not start in time")), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  return {
    url,
    pid: child.pid,
    logs,
    child,
    exited,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // Already gone.
      }
      return await exited;
    },
  };
}

/** Sends a signed `pull_request` webhook with `payload` to a service at `url`. */
export async function postWebhook(
  url: string,
  payload: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = JSON.stringify(payload);
  const res = await fetch(`${url}/webhooks/github`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "pull_request",
      "x-github-delivery": crypto.randomUUID(),
      "x-hub-signature-256": await sign(WEBHOOK_SECRET, body),
    },
    body,
  });
  return { status: res.status, body: await res.json() };
}

/** `GET {url}{path}` on the internal API, with the test bearer token. */
export async function getJson(url: string, path: string) {
  const res = await fetch(`${url}${path}`, {
    headers: { authorization: `Bearer ${BACKEND_TOKEN}` },
  });
  return await res.json();
}
