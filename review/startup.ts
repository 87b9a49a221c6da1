/**
 * What start-up says to a person: one clear line for the usual mistakes (a port in use, a KV
 * path that cannot be written), and, for `deno task dev`, what to do next.
 *
 * @module
 */

/**
 * One line explaining why the KV database could not be opened.
 *
 * @example
 * ```ts
 * kvOpenProblem("/nope/kv.sqlite3", new Deno.errors.NotFound("…")); // "cannot open KV_PATH=…"
 * ```
 */
export function kvOpenProblem(path: string | undefined, error: unknown): string {
  const where = path ? `KV_PATH=${path}` : "Deno's default KV database";
  const reason = error instanceof Deno.errors.PermissionDenied
    ? "permission denied (run with --allow-read --allow-write, and check the directory's owner)"
    : error instanceof Deno.errors.NotFound
    ? "its directory does not exist"
    : firstLine(error);
  return `cannot open ${where}: ${reason}. Set KV_PATH to a file in a writable directory.`;
}

/**
 * One line explaining why the HTTP listener could not start.
 *
 * @example
 * ```ts
 * listenProblem(8000, new Deno.errors.AddrInUse("…")); // "port 8000 is already in use: …"
 * ```
 */
export function listenProblem(port: number, error: unknown): string {
  if (error instanceof Deno.errors.AddrInUse) {
    return `port ${port} is already in use: stop the other process or set PORT to a free port`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `cannot listen on port ${port}: permission denied (ports below 1024 need privileges; set PORT)`;
  }
  return `cannot listen on port ${port}: ${firstLine(error)}`;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0].slice(0, 300);
}

/**
 * The lines `deno task dev` ends its start-up with: how to try the service, configure it and
 * point a GitHub App at it.
 *
 * @example
 * ```ts
 * console.log(nextSteps({ port: 8000, missing: ["GITHUB_WEBHOOK_SECRET"] }));
 * ```
 */
export function nextSteps(options: { port: number; missing: string[] }): string {
  const url = `http://localhost:${options.port}`;
  return [
    "",
    `Service running at ${url} (dashboard: ${url}/ once BACKEND_AUTH_TOKEN is set)`,
    "",
    "Next:",
    "  • See it work without any account:   deno task demo",
    "  • Configure it with a .env file, e.g.:",
    "      GITHUB_WEBHOOK_SECRET=<a long random string>",
    "      GITHUB_APP_ID=123456",
    '      GITHUB_APP_PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----\\n…"',
    "      BACKEND_AUTH_TOKEN=<another long random string>",
    "      AGENT_URL=https://your-agent.example   (unset: the built-in local reviewer)",
    "    then: deno run --env-file=.env -A main.ts --dev",
    "  • Point a GitHub App at it: webhook URL <public URL>/webhooks/github, the same secret,",
    "    events 'Pull request' and 'Issue comment' (a tunnel such as `cloudflared tunnel --url",
    `    ${url}` + '` gives a public URL). README: "Install as a GitHub App".',
    ...(options.missing.length ? ["", `Still missing: ${options.missing.join(", ")}`] : []),
    "",
  ].join("\n");
}
