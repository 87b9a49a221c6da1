/**
 * The processes a benchmark talks to: the service (`main.ts`, as `deno task start` runs it) and
 * the ingest floor (`bench/floor_server.ts`), each on its own KV file in a temp directory.
 *
 * @module
 */
import { BACKEND_TOKEN, WEBHOOK_SECRET } from "../tests/harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;

export { BACKEND_TOKEN, WEBHOOK_SECRET };

/** A running floor server. */
export interface FloorServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts `bench/floor_server.ts` on `kvPath`: bare `Deno.serve`, the service's HMAC check, one
 * `kv.set` of the body.
 *
 * @example
 * ```ts
 * const floor = await startFloorServer(`${dir}/floor.sqlite3`);
 * await runLoad(`${floor.url}/webhooks/github`, deliveries, 32);
 * await floor.stop();
 * ```
 */
export async function startFloorServer(kvPath: string): Promise<FloorServer> {
  return await spawnListening([
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--unstable-kv",
    new URL("./floor_server.ts", import.meta.url).pathname,
    kvPath,
    WEBHOOK_SECRET,
  ], {});
}

/** A running service process. */
export interface BenchService {
  url: string;
  pid: number;
  /** Its last 50 stderr lines (warnings and errors), for a failed run's report. */
  errors: string[];
  stop(): Promise<void>;
}

/**
 * Spawns `args` and resolves once a JSON line with `port` and a "listening" message appears on
 * stdout; later lines are read and dropped (a bench parsing every log line measures itself).
 */
async function spawnListening(args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", PORT: "0", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errors: string[] = [];
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      errors.push(...chunk.split("\n").filter(Boolean));
      errors.splice(0, Math.max(0, errors.length - 50));
    }
  })().catch(() => {});
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let port: number | undefined;
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    while (port === undefined) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`exited before listening: ${errors.join(" | ")}`);
      buffer += value;
      let i: number;
      while (port === undefined && (i = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        if (!line.includes("listening")) continue;
        try {
          const entry = JSON.parse(line);
          if (typeof entry.port === "number") port = entry.port;
        } catch {
          // Not JSON.
        }
      }
    }
  } finally {
    clearTimeout(timer);
  }
  (async () => {
    while (!(await reader.read()).done);
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    errors,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
    },
  };
}

/**
 * Starts the service as `deno task start` runs it, on `kvPath`, with the benchmark's secrets and
 * `env` on top. Logs stay at the default level: writing them is part of the service's cost.
 *
 * @example
 * ```ts
 * const service = await startBenchService(`${dir}/kv.sqlite3`, { AGENT_URL: agent.url });
 * ```
 */
export async function startBenchService(
  kvPath: string,
  env: Record<string, string>,
): Promise<BenchService> {
  return await spawnListening(
    ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "main.ts"],
    {
      KV_PATH: kvPath,
      GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
      GITHUB_TOKEN: "bench-token",
      BACKEND_AUTH_TOKEN: BACKEND_TOKEN,
      ...env,
    },
  );
}

/**
 * Resident set size of a process in MiB, from `/proc/<pid>/status` (Linux).
 *
 * @example
 * ```ts
 * const mb = await rssMb(service.pid);
 * ```
 */
export async function rssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/**
 * A counter from the service's `/metrics` (the sum over its label sets).
 *
 * @example
 * ```ts
 * const commits = await metricValue(service.url, "ai_review_kv_commits_total");
 * ```
 */
export async function metricValue(url: string, name: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${BACKEND_TOKEN}` },
  });
  const text = await res.text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}
