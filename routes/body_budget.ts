/**
 * Reading request bodies under two bounds: one body's size (413), and the bytes all bodies being
 * read at once may hold (503 with `retry-after`). The second bound matters because a webhook's
 * signature can only be checked once its whole body is read: without it, unsigned requests with a
 * well-formed but made-up signature could make the process buffer 25 MiB each, as many at once as
 * an attacker sends.
 *
 * @module
 */

/** Bytes held by bodies being read right now, shared by one app's routes. */
export interface BodyBudget {
  readonly limit: number;
  held: number;
}

/**
 * A budget of `limit` bytes for bodies read at once.
 *
 * @example
 * ```ts
 * const budget = createBodyBudget(64 * 1024 * 1024);
 * ```
 */
export function createBodyBudget(limit: number): BodyBudget {
  return { limit, held: 0 };
}

/** Result of {@link readBody}. */
export type BodyResult =
  | { ok: true; bytes: Uint8Array<ArrayBuffer> }
  | { ok: false; status: 413 | 503 };

/**
 * Reads `req`'s body, refusing it (and reading no further) once it passes `maxBytes` (413) or
 * the budget is spent (503). The bytes are given back to the budget when `release` is called.
 *
 * @example
 * ```ts
 * const body = await readBody(req, 25 * 1024 * 1024, budget);
 * try { ... } finally { releaseBody(budget, body); }
 * ```
 */
export async function readBody(
  req: Request,
  maxBytes: number,
  budget: BodyBudget,
): Promise<BodyResult> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) return { ok: false, status: 413 };
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body?.getReader();
  let refused: 413 | 503 | undefined;
  try {
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      if (size + value.byteLength > maxBytes) refused = 413;
      else if (budget.held + value.byteLength > budget.limit) refused = 503;
      if (refused) break;
      size += value.byteLength;
      budget.held += value.byteLength;
      chunks.push(value);
    }
  } finally {
    if (refused) await reader?.cancel().catch(() => {});
    if (refused) budget.held -= size;
  }
  if (refused) return { ok: false, status: refused };
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { ok: true, bytes };
}

/**
 * Gives a read body's bytes back to the budget.
 *
 * @example
 * ```ts
 * releaseBody(budget, body);
 * ```
 */
export function releaseBody(budget: BodyBudget, body: BodyResult): void {
  if (body.ok) budget.held = Math.max(0, budget.held - body.bytes.byteLength);
}
