/**
 * Helpers of the fake GitHub: GitHub's error bodies, user objects, paging with `Link`, JSON
 * bodies, base64 and blob shas, and the unified-diff line map review comments are checked with.
 *
 * @module
 */

/** A JSON request body. */
export type Body = Record<string, unknown>;

const DOCS = "https://docs.github.com/rest";

/** GitHub's error body: `{ message, documentation_url, status }` plus `extra`. */
export function ghError(status: number, message: string, extra: Body = {}): Response {
  return Response.json({ message, ...extra, documentation_url: DOCS, status: String(status) }, {
    status,
  });
}

/** 404 `Not Found`. */
export const notFound = (): Response => ghError(404, "Not Found");

/** 422 `Validation Failed` with one field error, like GitHub's REST validation. */
export function validationFailed(resource: string, field: string, message: string): Response {
  return ghError(422, "Validation Failed", {
    errors: [{ resource, code: "custom", field, message }],
  });
}

/** 422 `Unprocessable Entity` with `errors: [error]`, like the pull-review endpoints. */
export function unprocessable(error: string): Response {
  return ghError(422, "Unprocessable Entity", { errors: [error] });
}

/** The JSON object body, or GitHub's 400 answer. `optional`: an empty body reads as `{}`. */
export async function readJson(req: Request, optional = false): Promise<Body | Response> {
  const text = await req.text();
  if (optional && text.trim() === "") return {};
  try {
    const value = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Body;
  } catch {
    // answered below
  }
  return ghError(400, "Problems parsing JSON");
}

/** One page of `items` per `per_page`/`page` (30 and 1 by default) and its `Link` header. */
export function paged<T>(url: string, items: T[]): { items: T[]; headers: Record<string, string> } {
  const u = new URL(url);
  const perPage = Math.min(100, Math.max(1, Number(u.searchParams.get("per_page") ?? 30) || 30));
  const page = Math.max(1, Number(u.searchParams.get("page") ?? 1) || 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (n: number, rel: string) => {
    u.searchParams.set("page", String(n));
    return `<${u}>; rel="${rel}"`;
  };
  const links = [
    ...(page > 1 ? [link(page - 1, "prev"), link(1, "first")] : []),
    ...(page < last ? [link(page + 1, "next"), link(last, "last")] : []),
  ];
  return {
    items: items.slice((page - 1) * perPage, page * perPage),
    headers: links.length ? { link: links.join(", ") } : {},
  };
}

/** A stable positive number for `text` (FNV-1a), for user ids and such. */
export function stableId(text: string): number {
  let h = 0x811c9dc5;
  for (const ch of text) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h % 100_000_000 + 1;
}

/** A simple-user object as GitHub returns it. */
export function userJson(login: string, type: "User" | "Bot" = "User"): Body {
  const id = stableId(login);
  return {
    login,
    id,
    node_id: `${type === "Bot" ? "BOT" : "U"}_kgDO${id}`,
    type,
    site_admin: false,
    html_url: type === "Bot"
      ? `https://github.example/apps/${login.replace(/\[bot\]$/, "")}`
      : `https://github.example/${login}`,
  };
}

/** ISO 8601 without milliseconds, like GitHub's timestamps. */
export const isoSeconds = (ms: number = Date.now()): string =>
  new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** Base64 of `bytes`. */
export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** The git blob sha of `bytes`: sha1 of `blob <size>\0<bytes>`. */
export async function blobSha(bytes: Uint8Array): Promise<string> {
  const head = new TextEncoder().encode(`blob ${bytes.length}\0`);
  const all = new Uint8Array(head.length + bytes.length);
  all.set(head);
  all.set(bytes, head.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The lines one file's diff shows, each mapped to the index of its hunk. */
export interface DiffFile {
  /** New-file line numbers (added and context lines). */
  right: Map<number, number>;
  /** Old-file line numbers (deleted and context lines). */
  left: Map<number, number>;
}

/** The files of a unified diff by their new path (the old path for a deleted file). */
export function parseDiff(diff: string): Map<string, DiffFile> {
  const files = new Map<string, DiffFile>();
  let current: DiffFile | undefined;
  let currentHasHunks = false;
  let hunk = -1;
  let oldLine = 0, newLine = 0, oldLeft = 0, newLeft = 0;
  const key = (path: string) => {
    for (const [k, v] of files) if (v === current && k !== path) files.delete(k);
    files.set(path, current!);
  };
  for (const raw of diff.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (current && (oldLeft > 0 || newLeft > 0)) {
      const ch = line[0];
      if (ch === "\\") continue;
      if (ch === "+" && newLeft > 0) {
        current.right.set(newLine++, hunk);
        newLeft--;
        continue;
      }
      if (ch === "-" && oldLeft > 0) {
        current.left.set(oldLine++, hunk);
        oldLeft--;
        continue;
      }
      if ((ch === " " || line === "") && oldLeft > 0 && newLeft > 0) {
        current.left.set(oldLine++, hunk);
        current.right.set(newLine++, hunk);
        oldLeft--;
        newLeft--;
        continue;
      }
      oldLeft = newLeft = 0; // counts that do not match the lines: the hunk ends here
    }
    const git = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
    if (git) {
      current = { right: new Map(), left: new Map() };
      currentHasHunks = false;
      key(git[2]);
      continue;
    }
    if (line.startsWith("--- ")) {
      if (!current || currentHasHunks) {
        current = { right: new Map(), left: new Map() };
        currentHasHunks = false;
      }
      const old = line.slice(4).replace(/\t.*$/, "");
      if (old !== "/dev/null" && ![...files.values()].includes(current)) {
        key(old.replace(/^a\//, ""));
      }
      continue;
    }
    if (line.startsWith("+++ ") && current) {
      const path = line.slice(4).replace(/\t.*$/, "");
      if (path !== "/dev/null") key(path.replace(/^b\//, ""));
      continue;
    }
    const h = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (h && current) {
      hunk++;
      currentHasHunks = true;
      oldLine = Number(h[1]);
      oldLeft = h[2] === undefined ? 1 : Number(h[2]);
      newLine = Number(h[3]);
      newLeft = h[4] === undefined ? 1 : Number(h[4]);
    }
  }
  return files;
}

/** A review comment as posted (`POST …/pulls/{n}/reviews`, `comments[]`). */
export interface PostedReviewComment {
  path?: unknown;
  line?: unknown;
  side?: unknown;
  start_line?: unknown;
  start_side?: unknown;
  body?: unknown;
  position?: unknown;
}

/** Why GitHub would refuse `comment` on a pull with `files`, or undefined when it resolves. */
export function reviewCommentError(
  files: Map<string, DiffFile>,
  comment: PostedReviewComment,
): string | undefined {
  if (typeof comment.body !== "string" || comment.body === "") return "Body can't be blank";
  if (typeof comment.path !== "string") return "Path can't be blank";
  const file = files.get(comment.path);
  if (!file) return "Path could not be resolved";
  const side = comment.side ?? "RIGHT";
  if (side !== "RIGHT" && side !== "LEFT") return "Line could not be resolved";
  const lines = side === "RIGHT" ? file.right : file.left;
  if (typeof comment.line !== "number" || !lines.has(comment.line)) {
    return "Line could not be resolved";
  }
  if (comment.start_line === undefined || comment.start_line === null) return undefined;
  const startSide = comment.start_side ?? side;
  if (startSide !== "RIGHT" && startSide !== "LEFT") return "Line could not be resolved";
  const startLines = startSide === "RIGHT" ? file.right : file.left;
  if (typeof comment.start_line !== "number" || !startLines.has(comment.start_line)) {
    return "Pull request review thread start line must be part of the diff";
  }
  if (startSide === side && comment.start_line >= comment.line) {
    return "Pull request review thread start line must precede the end line.";
  }
  if (startLines.get(comment.start_line) !== lines.get(comment.line)) {
    return "Pull request review thread start line must be part of the same hunk as the line.";
  }
  return undefined;
}
