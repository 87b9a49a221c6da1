/**
 * `deno task reviews <command>`: the operator CLI of the review service's internal API.
 *
 * ```sh
 * export BACKEND_AUTH_TOKEN=…            # the service's bearer; REVIEWS_URL or --url says where
 * deno task reviews list --status failed
 * deno task reviews show <id>
 * deno task reviews retry <id>
 * deno task reviews limit org:6811672 8  # or `default`
 * ```
 *
 * Exit codes (also in `--help`, and {@link EXIT}): 0 done (a `cancel` answered "stopping" too);
 * 1 the service answered an error (5xx, not the API's answer); 2 usage error (bad flags or
 * arguments, a 400, no `BACKEND_AUTH_TOKEN`); 3 not found (404); 4 not possible now (409); 5 the
 * service unreachable or timed out; 6 the service refused the token (401).
 *
 * @module
 */
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { ReviewEvent } from "../kv/records.ts";
import type { OwnerUsage } from "../review/operations.ts";
import type { PublicReview } from "../review/service.ts";
import { answerError, CliError, createClient, EXIT, expectOk } from "./reviews_client.ts";
import {
  formatOwners,
  formatOwnerUsage,
  formatReview,
  formatReviews,
  formatStats,
} from "./reviews_format.ts";

/**
 * What {@link run} talks to: the environment, the two output streams, and optionally a `fetch`,
 * colors, the terminal width and a clock (tests and `import.meta.main` fill them differently).
 *
 * @example
 * ```ts
 * const io: Io = { env: { BACKEND_AUTH_TOKEN: "t" }, stdout: (s) => out.push(s), stderr: (s) => err.push(s) };
 * ```
 */
export interface Io {
  env: Record<string, string | undefined>;
  /** Receives whole lines, newline included. */
  stdout(text: string): void;
  stderr(text: string): void;
  fetch?: typeof fetch;
  color?: boolean;
  columns?: number;
  now?: () => number;
}

const STATUSES = ["pending", "queued", "running", "completed", "failed", "cancelled"];

const HELP_AFTER = `
Environment:
  BACKEND_AUTH_TOKEN  the service's bearer token (required)
  REVIEWS_URL         default for --url
  NO_COLOR            no colors even on a terminal

Exit codes:
  0  done (also a cancel answered "stopping": the running review was asked to stop)
  1  the service answered an error (5xx, or an answer that is not the API's)
  2  usage error: bad flags or arguments, a value the service refused (400), no token
  3  not found (404)
  4  not possible now (409): cancel of a finished review, retry of one that did not fail
  5  the service could not be reached or did not answer in time
  6  the service refused the token (401)`;

/** A commander argParser: `parse` answers the value, or undefined to refuse it with `why`. */
function parser<T>(why: string, parse: (v: string) => T | undefined): (v: string) => T {
  return (v) => {
    const value = parse(v);
    if (value === undefined) throw new InvalidArgumentError(why);
    return value;
  };
}
const matching = (re: RegExp, why: string) => parser(why, (v) => re.test(v) ? v : undefined);
const int = (v: string, max: number) => /^\d{1,3}$/.test(v) && +v <= max ? +v : undefined;
const isHttp = (v: string) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol);

const PARSE = {
  url: parser(
    "must be an http(s) URL such as http://localhost:8000",
    (v) => isHttp(v) ? v : undefined,
  ),
  seconds: parser(
    "must be seconds, above 0, at most 600",
    (v) => +v > 0 && +v <= 600 ? +v : undefined,
  ),
  pageSize: parser("must be an integer from 1 to 100", (v) => int(v, 100) || undefined),
  limit: parser(
    "must be an integer from 0 to 100, or default",
    (v) => v === "default" ? null : int(v, 100),
  ),
  owner: matching(/^(org|user):[\w.-]{1,64}$/, "must be org:ID or user:ID"),
  ownerFilter: matching(/^((org|user):)?[\w-]{1,64}$/, "must be org:ID, user:ID or ID"),
  repo: matching(/^[\w.-]{1,100}\/[\w.-]{1,100}$/, "must be owner/name"),
};

type Call = [method: string, path: string, body?: unknown];
type ReviewPage = { reviews: PublicReview[]; cursor: string | null };

interface Globals {
  url: string;
  json?: boolean;
  timeout: number;
}

/** Builds the commander program; every action writes through `io` and throws `CliError`. */
function program(io: Io, state: { json: boolean }): Command {
  const now = io.now ?? Date.now;
  const style = () => ({ now: now(), columns: io.columns, color: io.color && !io.env.NO_COLOR });
  const print = (text: string) => io.stdout(`${text}\n`);
  // The token is checked at the first request, so `--help` and usage errors need none.
  const connect = (cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const token = io.env.BACKEND_AUTH_TOKEN?.trim();
    if (!token) {
      throw new CliError("BACKEND_AUTH_TOKEN is not set (the service's bearer token)", EXIT.USAGE);
    }
    // A default from REVIEWS_URL is not parsed by commander.
    if (!isHttp(g.url)) throw new CliError(`--url ${g.url} is not an http(s) URL`, EXIT.USAGE);
    const client = createClient({ url: g.url, token, fetch: io.fetch, timeoutMs: g.timeout * 1e3 });
    state.json = g.json === true;
    return { client, json: state.json };
  };
  const path = (id: string) => `/reviews/${encodeURIComponent(id)}`;
  /** One request; with `--json` its answer as it came, else `format` of it. */
  const show = async <T>(
    cmd: Command,
    what: string,
    format: (body: T) => string,
    ...call: Call
  ) => {
    const { client, json } = connect(cmd);
    const body = expectOk(await client.request(...call), what) as T;
    print(json ? JSON.stringify(body, null, 2) : format(body));
  };
  /** A cancel or a retry: 404 names the review; other errors say what could not be done. */
  const act = async (
    cmd: Command,
    [id, verb]: [string, string],
    message: (r: PublicReview, status: number) => string,
    ...call: Call
  ) => {
    const { client, json } = connect(cmd);
    const answer = await client.request(...call);
    if (answer.status === 404) throw answerError(answer, `review ${id}`);
    const r = expectOk(answer, `cannot ${verb} review ${id}`) as PublicReview;
    print(json ? JSON.stringify(r, null, 2) : message(r, answer.status));
  };

  const root = new Command("reviews")
    .description("Operate the review service: reviews, owners' limits and the queue.")
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      getOutHelpWidth: () => io.columns ?? 100,
      getErrHelpWidth: () => io.columns ?? 100,
      // Commander would read FORCE_COLOR & co. through process.env, which the task does not allow.
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .exitOverride()
    .option(
      "--url <url>",
      "service base URL",
      PARSE.url,
      io.env.REVIEWS_URL || "http://localhost:8000",
    )
    .option("--json", "print the service's JSON answer only (also for error answers)")
    .option("--timeout <seconds>", "bound on each request", PARSE.seconds, 15)
    .addHelpText("after", HELP_AFTER);

  root.command("list")
    .description("reviews, newest first")
    .option("--owner <owner>", "org:ID, user:ID, or ID (either type)", PARSE.ownerFilter)
    .addOption(new Option("--status <status>", "only reviews in this status").choices(STATUSES))
    .option("--repo <owner/name>", "only this repository", PARSE.repo)
    .option("--limit <n>", "reviews per page (1-100)", PARSE.pageSize, 20)
    .option("--cursor <cursor>", "the next page, from a previous list")
    .action((opts, cmd: Command) => {
      const query = new URLSearchParams();
      for (const key of ["owner", "status", "repo", "limit", "cursor"]) {
        if (opts[key] !== undefined) query.set(key, String(opts[key]));
      }
      return show<ReviewPage>(
        cmd,
        "listing",
        (page) => {
          if (!page.cursor) return formatReviews(page.reviews, style());
          query.set("cursor", page.cursor);
          const flags = [...query].map(([k, v]) => `--${k} ${v}`).join(" ");
          const hint =
            `more (a filtered page may come back short): deno task reviews list ${flags}`;
          return `${formatReviews(page.reviews, style())}\n\n${hint}`;
        },
        "GET",
        `/reviews?${query}`,
      );
    });

  root.command("show")
    .description("a review's fields, findings by severity, and events")
    .argument("<id>", "review id")
    .action(async (id: string, _opts, cmd: Command) => {
      const { client, json } = connect(cmd);
      const [review, events] = await Promise.all([
        client.request("GET", path(id)),
        client.request("GET", `${path(id)}/events`),
      ]);
      const record = expectOk(review, `review ${id}`) as PublicReview;
      const log = expectOk(events, `review ${id}`) as { events: ReviewEvent[] };
      if (json) return print(JSON.stringify({ review: record, events: log }, null, 2));
      print(formatReview(record, log.events, style()));
    });

  root.command("cancel")
    .description("cancel a review (a running one is asked to stop)")
    .argument("<id>", "review id")
    .option("--reason <text>", "why (kept on the review)")
    .action((id: string, opts: { reason?: string }, cmd: Command) => {
      const body = opts.reason === undefined ? {} : { reason: opts.reason };
      const message = (r: PublicReview, status: number) =>
        status === 202
          ? `review ${id} is stopping: its running attempt was asked to end (still ${r.status})`
          : `review ${id} ${r.status}`;
      return act(cmd, [id, "cancel"], message, "POST", `${path(id)}/cancel`, body);
    });

  root.command("retry")
    .description("retry a failed or cancelled review as a new review")
    .argument("<id>", "review id")
    .action((id: string, _opts, cmd: Command) => {
      const message = (r: PublicReview, status: number) =>
        status === 202
          ? `retry of ${id} created: ${r.id} (${r.status})`
          : `${id} was retried already: ${r.id} (${r.status})`;
      return act(cmd, [id, "retry"], message, "POST", `${path(id)}/retry`);
    });

  root.command("owners")
    .description("owners with work or a limit of their own: slots, pending, oldest pending")
    .action((_opts, cmd: Command) =>
      show<{ owners: OwnerUsage[] }>(cmd, "owners", (a) => formatOwners(a.owners), "GET", "/owners")
    );

  root.command("limit")
    .description("set an owner's own limit of reviews in flight, or `default` to drop it")
    .addArgument(new Argument("<owner>", "org:ID or user:ID").argParser(PARSE.owner))
    .addArgument(
      new Argument("<limit>", "0-100 (0 pauses the owner), or default").argParser(PARSE.limit),
    )
    .action((owner: string, limit: number | null, _opts, cmd: Command) => {
      const [type, id] = owner.split(":");
      const url = `/owners/${type}/${encodeURIComponent(id)}/limit`;
      return show(cmd, `owner ${owner}`, formatOwnerUsage, "PUT", url, { limit });
    });

  root.command("stats")
    .description("totals: owners, active, pending, oldest pending, queue lag")
    .action((_opts, cmd: Command) => show(cmd, "stats", formatStats, "GET", "/stats"));
  return root;
}

/**
 * Runs one CLI invocation and answers its exit code; never exits the process and never throws.
 *
 * @example
 * ```ts
 * const code = await run(["stats", "--json"], {
 *   env: { BACKEND_AUTH_TOKEN: "t", REVIEWS_URL: "http://localhost:8000" },
 *   stdout: (s) => console.log(s.trimEnd()),
 *   stderr: (s) => console.error(s.trimEnd()),
 * });
 * ```
 */
export async function run(argv: string[], io: Io): Promise<number> {
  const state = { json: false };
  try {
    await program(io, state).parseAsync(argv, { from: "user" });
    return EXIT.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander printed its message (or the help) already.
      const done = error.code === "commander.helpDisplayed" || error.code === "commander.version";
      return done ? EXIT.OK : EXIT.USAGE;
    }
    if (error instanceof CliError) {
      if (state.json && error.body !== undefined) {
        io.stdout(`${JSON.stringify(error.body, null, 2)}\n`);
      }
      io.stderr(`error: ${error.message}\n`);
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`error: unexpected: ${message.split("\n")[0]}\n`);
    return EXIT.SERVICE;
  }
}

/** Writes all of `text` (a pipe may take it in parts). */
function writeAll(file: { writeSync(p: Uint8Array): number }, text: string) {
  const bytes = new TextEncoder().encode(text);
  for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
}

if (import.meta.main) {
  const env = {
    BACKEND_AUTH_TOKEN: Deno.env.get("BACKEND_AUTH_TOKEN"),
    REVIEWS_URL: Deno.env.get("REVIEWS_URL"),
    NO_COLOR: Deno.env.get("NO_COLOR"),
  };
  const terminal = Deno.stdout.isTerminal();
  Deno.exit(
    await run(Deno.args, {
      env,
      stdout: (text) => writeAll(Deno.stdout, text),
      stderr: (text) => writeAll(Deno.stderr, text),
      color: terminal && !env.NO_COLOR,
      columns: terminal ? Deno.consoleSize().columns : undefined,
    }),
  );
}
