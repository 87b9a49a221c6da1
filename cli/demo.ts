/**
 * `deno task demo`: the whole service on this machine with no accounts and no settings. It starts
 * the real server (a child process, temp KV file, built-in local reviewer) against a GitHub
 * stand-in, sends signed `pull_request.opened` webhooks for 9 pull requests of two owners, and
 * prints each review's progress, the owners' slots, one posted comment and the dashboard sign-in.
 *
 * Flags: `--keep` (stay up until Ctrl-C), `--port N` (0: any free port), `--verbose` (show the
 * service's JSON logs).
 *
 * @module
 */
import {
  DEMO_PULLS,
  type DemoGitHub,
  openedPayload,
  sendWebhook,
  startDemoGitHub,
} from "./demo_github.ts";
import { ConfigSchema } from "../review/config.ts";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
const SLOTS = 2;
const TERMINAL = ["completed", "failed", "cancelled"];
/** ANSI colors of the statuses (the others, failures, are red). */
const COLORS: Record<string, number> = { pending: 33, queued: 36, running: 34, completed: 32 };
/**
 * Every service setting, blanked (an empty value reads as unset) before the demo's own are set:
 * whatever the shell exports (a real `AGENT_URL`, an App key, `QUEUE_TRANSPORT`…) stays out.
 */
const BLANKED = Object.keys(ConfigSchema.in.shape);

/**
 * Options of {@link runDemo}.
 *
 * @example
 * ```ts
 * const options: DemoOptions = { keep: false, port: 0, out: console.log };
 * ```
 */
export interface DemoOptions {
  /** Stay up after the reviews (service and GitHub stand-in) until `signal` aborts. */
  keep: boolean;
  /** The service's port; 0 means any free one; default 8000 when free, else any free one. */
  port?: number;
  /** Receives every output line. */
  out: (line: string) => void;
  /** Stops the demo (Ctrl-C); the service and the stand-in are shut down cleanly. */
  signal?: AbortSignal;
  /** Echo the service's JSON log lines. */
  verbose?: boolean;
  /** ANSI colors (default off). */
  color?: boolean;
  /** Bound on the whole run until every review finished (default 60 s). */
  timeoutMs?: number;
  /** Latency of every GitHub stand-in answer (default 150 ms), so waiting reviews show. */
  latencyMs?: number;
}

type Review = {
  id: string;
  status: string;
  repo: string;
  pullNumber: number;
  findingCount?: number;
  progress?: { message: string };
  errorMessage?: string;
};
type Slots = { limit: number; active: number; pending: number };
type OwnerUsage = Slots & { owner: { login?: string; id: string } };

/** A failure the demo explains in one line. */
class DemoError extends Error {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const random = () => crypto.randomUUID().replaceAll("-", "");

/** Whether nothing listens on `port` (0: the kernel picks one); the port, or undefined. */
function tryPort(port: number): number | undefined {
  try {
    const listener = Deno.listen({ hostname: "0.0.0.0", port });
    listener.close();
    return (listener.addr as Deno.NetAddr).port;
  } catch {
    return undefined;
  }
}

/** The port asked for (a busy one fails loudly in the service); 0 or none: a free one, 8000 first
 * when none was asked for. */
function choosePort(wanted: number | undefined): number {
  if (wanted) return wanted;
  const port = (wanted === undefined ? tryPort(8000) : undefined) ?? tryPort(0);
  if (port === undefined) throw new DemoError("no free port");
  return port;
}

/** Reads `stream` line by line into `onLine` (always drained, so the child never blocks). */
async function lines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    parts.forEach(onLine);
  }
  if (buffer) onLine(buffer);
}

/** The service as a child process, its output drained into `onLine`. */
function spawnService(env: Record<string, string>, onLine: (line: string) => void) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "main.ts"],
    cwd: ROOT,
    // No clearEnv: the child needs the parent's certificates settings and DENO_DIR.
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const drained = Promise.all([lines(child.stdout, onLine), lines(child.stderr, onLine)]);
  let status: Deno.CommandStatus | undefined;
  const exited = child.status.then(async (s) => (await drained, status = s));
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // Already gone: Ctrl-C reaches the whole process group.
    }
  };
  return {
    exited,
    gone: () => status,
    /** SIGTERM: it hands running work back for up to 4 s; killed if it takes much longer. */
    async stop() {
      kill("SIGTERM");
      const timer = setTimeout(() => kill("SIGKILL"), 8_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** After a review's status: its progress while it runs, its findings once it ended. */
function detail(r: Review): string {
  if (r.status === "running") return r.progress?.message ?? "";
  if (!TERMINAL.includes(r.status)) return "";
  const n = r.findingCount ?? 0;
  return `${n} finding${n === 1 ? "" : "s"}${r.errorMessage ? `; ${r.errorMessage}` : ""}`;
}

/**
 * Runs the demo; resolves with the exit code (0: every review completed; 1: something failed,
 * said in the output; 130: interrupted before the end).
 *
 * @example
 * ```ts
 * const code = await runDemo({ keep: false, port: 0, out: console.log });
 * ```
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { out, signal } = options;
  const paint = (code: number, text: string) =>
    options.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  const shown = (status: string) => paint(COLORS[status] ?? 31, status);
  const started = Date.now();
  const at = () => paint(2, `+${((Date.now() - started) / 1000).toFixed(2)}s`.padStart(7));
  const line = (r: Review, change: string) =>
    out(`${at()}  ${r.id.slice(0, 8)}  ${label(r)}  ${change}  ${paint(2, detail(r))}`.trimEnd());

  const dir = await Deno.makeTempDir({ prefix: "review-demo-" });
  const [secret, token] = [random(), random()];
  const logTail: string[] = [];
  let service: ReturnType<typeof spawnService> | undefined;
  let port = 0;
  let github: DemoGitHub | undefined;
  const check = () => {
    const gone = service?.gone();
    if (gone) throw new DemoError(`the service exited (code ${gone.code})`);
    if (signal?.aborted) throw new DemoError("interrupted");
  };
  try {
    github = await startDemoGitHub(DEMO_PULLS, options.latencyMs ?? 150);
    port = choosePort(options.port);
    const url = `http://localhost:${port}`;
    service = spawnService({
      ...Object.fromEntries(BLANKED.map((name) => [name, ""])),
      PORT: String(port),
      KV_PATH: `${dir}/kv.sqlite3`,
      GITHUB_WEBHOOK_SECRET: secret,
      GITHUB_TOKEN: "demo-token",
      GITHUB_API_URL: github.url,
      BACKEND_AUTH_TOKEN: token,
      AGENT_KIND: "local",
      MAX_CONCURRENT_PER_OWNER: String(SLOTS),
      // Progress lines are stored as they come, not every 2 s, so the demo can show them.
      PROGRESS_WRITE_MS: "10",
      // Its JSON logs are shown with --verbose only; warnings and errors explain an early exit.
      LOG_LEVEL: options.verbose ? "info" : "warn",
      NO_COLOR: "1",
    }, (text) => {
      logTail.push(text);
      if (logTail.length > 40) logTail.shift();
      if (options.verbose) out(paint(2, `  [service] ${text}`));
    });

    // Up when /health answers: whatever (and whether) it logs.
    const upBy = Date.now() + 30_000;
    const healthy = (r: Response) => r.body?.cancel().then(() => r.ok) ?? r.ok;
    while (!(await fetch(`${url}/health`).then(healthy, () => false))) {
      check();
      if (Date.now() > upBy) throw new DemoError("the service did not answer /health in 30 s");
      await sleep(100);
    }
    out(`Service up at ${url} (KV ${dir}/kv.sqlite3, local reviewer, ${SLOTS} slots per owner)`);
    out(`GitHub stand-in at ${github.url}`);
    const api = async <T>(path: string): Promise<T> => {
      const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      if (!res.ok) throw new DemoError(`GET ${path} answered ${res.status}: ${await res.text()}`);
      return await res.json();
    };

    // All at once, so an owner's third pull request finds both its slots taken.
    const answers = await Promise.all(
      DEMO_PULLS.map((pull) => sendWebhook(url, secret, openedPayload(pull))),
    );
    const owners = [...new Set(DEMO_PULLS.map((p) => p.owner))];
    const counts = owners.map((o) => `${o}: ${DEMO_PULLS.filter((p) => p.owner === o).length}`);
    out(`Sent ${answers.length} signed pull_request.opened webhooks (${counts.join(", ")})`);
    const reviews = new Map<string, Review>();
    answers.forEach(({ status, body }, i) => {
      const { owner, repo, number } = DEMO_PULLS[i];
      if (status !== 202 || typeof body.reviewId !== "string") {
        throw new DemoError(`webhook for ${owner}/${repo}#${number}: ${status}`);
      }
      const review = { id: body.reviewId, status: String(body.status), repo: `${owner}/${repo}` };
      reviews.set(review.id, { ...review, pullNumber: number });
      line(reviews.get(review.id)!, shown(review.status));
    });

    const slots = new Map<string, { text: string; limit: number }>();
    const pollOwners = async () => {
      const { owners: usage } = await api<{ owners: OwnerUsage[] }>("/owners");
      // An owner with nothing left to do drops out of the overview: all its slots are free.
      const now = new Map(
        [...slots].map(([name, { limit }]) => [name, { limit, active: 0, pending: 0 }]),
      );
      for (const o of usage) now.set(o.owner.login ?? o.owner.id, o);
      for (const [name, { limit, active, pending }] of now) {
        const text = `${name}: ${active}/${limit} running, ${pending} waiting`;
        if (slots.get(name)?.text !== text) out(`${at()}  ${paint(1, "slots")}     ${text}`);
        slots.set(name, { text, limit });
      }
    };
    const deadline = started + (options.timeoutMs ?? 60_000);
    const open = () => [...reviews.values()].filter((r) => !TERMINAL.includes(r.status));
    while (open().length) {
      await pollOwners();
      for (const now of (await api<{ reviews: Review[] }>("/reviews?limit=50")).reviews) {
        const before = reviews.get(now.id);
        if (!before || (before.status === now.status && detail(before) === detail(now))) continue;
        reviews.set(now.id, now);
        line(
          now,
          before.status === now.status
            ? shown(now.status)
            : `${shown(before.status)} → ${shown(now.status)}`,
        );
      }
      if (!open().length) break;
      check();
      if (Date.now() > deadline) {
        const left = open().map((r) => `${label(r).trim()} ${r.status}`).join(", ");
        throw new DemoError(`reviews still open after ${(deadline - started) / 1000} s: ${left}`);
      }
      await sleep(200);
    }
    await pollOwners();

    const all = [...reviews.values()];
    const done = all.filter((r) => r.status === "completed").length;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    out("");
    out(`${done} of ${all.length} reviews completed for ${owners.length} owners in ${seconds} s.`);
    // The first pull request's comment: it has the most to show (a secret and an eval).
    const { owner, repo, number } = DEMO_PULLS[0];
    const comment = github.fake.comments.find((c) =>
      c.owner === owner && c.repo === repo && c.issueNumber === number
    );
    if (comment) {
      out("");
      out(`The comment posted on ${owner}/${repo}#${number}, as GitHub received it:`);
      out("-".repeat(72));
      comment.body.trimEnd().split("\n").forEach((text) => out(text));
      out("-".repeat(72));
    }
    out("");
    out(`Dashboard: ${url}/login#token=${token}`);
    out(`CLI:       BACKEND_AUTH_TOKEN=${token} deno task reviews --url ${url} list`);
    if (done !== all.length) throw new DemoError(`${all.length - done} reviews did not complete`);
    if (!comment) throw new DemoError(`no comment was posted on ${owner}/${repo}#${number}`);

    if (!options.keep) {
      out("(The service stops now; `deno task demo --keep` leaves it up to sign in.)");
      return 0;
    }
    out("Service and GitHub stand-in stay up; press Ctrl-C to stop.");
    const aborted = new Promise((resolve) => signal?.addEventListener("abort", resolve));
    await Promise.race([aborted, service.exited]);
    out("Stopping the service and the GitHub stand-in.");
    // Ctrl-C reaches the service too: its stopping then is no failure.
    if (!signal?.aborted) check();
    return 0;
  } catch (error) {
    if (signal?.aborted) {
      out("Interrupted.");
      return 130;
    }
    out(`demo failed: ${error instanceof DemoError ? error.message : String(error)}`);
    if (logTail.some((text) => text.includes("AddrInUse"))) {
      out(`Port ${port} is taken: \`--port 0\` picks a free one.`);
    }
    if (!options.verbose && logTail.length) {
      out("Last lines the service wrote:");
      logTail.forEach((text) => out(`  ${text}`));
    }
    return 1;
  } finally {
    await service?.stop();
    await github?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** `acme/api#101`, padded so the columns line up. */
function label(review: Pick<Review, "repo" | "pullNumber">): string {
  return `${review.repo}#${review.pullNumber}`.padEnd(18);
}

/** Parses the flags; a number is the exit code after printing the usage or an error. */
function parseFlags(args: string[]): Omit<DemoOptions, "out" | "signal"> | number {
  const options: Omit<DemoOptions, "out" | "signal"> = { keep: false };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    if (flag === "--keep") options.keep = true;
    else if (flag === "--verbose") options.verbose = true;
    else if (flag === "--port") {
      const value = Number(inline ?? args[++i]);
      if (!Number.isInteger(value) || value < 0 || value > 65535) {
        console.error("--port needs a port number (0: any free port)");
        return 2;
      }
      options.port = value;
    } else {
      const help = flag === "--help" || flag === "-h";
      if (!help) console.error(`unknown argument: ${args[i]}`);
      console.error("usage: deno task demo [--keep] [--port N (0: any free)] [--verbose]");
      return help ? 0 : 2;
    }
  }
  return options;
}

if (import.meta.main) {
  const flags = parseFlags(Deno.args);
  if (typeof flags === "number") Deno.exit(flags);
  const controller = new AbortController();
  const stop = () => {
    controller.abort();
    // A second Ctrl-C ends the demo at once.
    Deno.removeSignalListener("SIGINT", stop);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", () => controller.abort());
  const color = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
  const code = await runDemo({ ...flags, color, out: console.log, signal: controller.signal });
  Deno.exit(code);
}
