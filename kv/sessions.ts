/**
 * Dashboard sign-in sessions: a random id in an `HttpOnly` cookie names a stored session, so
 * signing out (or expiry) ends it on every instance.
 *
 * @module
 */
import { z } from "zod";
import { withLockRetry } from "./commit.ts";
import { keys } from "./keys.ts";

/** `["dashboard_sessions", id]`. */
export const DashboardSessionSchema = z.object({
  createdAt: z.number(),
  expiresAt: z.number(),
  /** The token forms must send back (CSRF). */
  csrf: z.string(),
  /** SHA-256 of the `BACKEND_AUTH_TOKEN` signed in with: a rotated token ends the session. */
  tokenHash: z.string(),
});
/** A stored dashboard session. */
export type DashboardSession = z.infer<typeof DashboardSessionSchema>;

/**
 * Stores a session; KV removes it when it expires.
 *
 * @example
 * ```ts
 * await putSession(kv, id, { createdAt: now, expiresAt: now + ttl, csrf });
 * ```
 */
export async function putSession(
  kv: Deno.Kv,
  id: string,
  session: DashboardSession,
): Promise<void> {
  const ttl = Math.max(1_000, session.expiresAt - session.createdAt);
  await withLockRetry(() => kv.set(keys.dashboardSession(id), session, { expireIn: ttl }));
}

/**
 * Reads a session that has not expired (`null` otherwise).
 *
 * @example
 * ```ts
 * const session = await getSession(kv, id, Date.now());
 * ```
 */
export async function getSession(
  kv: Deno.Kv,
  id: string,
  now: number,
): Promise<DashboardSession | null> {
  const entry = await withLockRetry(() => kv.get(keys.dashboardSession(id)));
  const parsed = DashboardSessionSchema.safeParse(entry.value);
  return parsed.success && parsed.data.expiresAt > now ? parsed.data : null;
}

/**
 * Ends a session (sign-out).
 *
 * @example
 * ```ts
 * await deleteSession(kv, id);
 * ```
 */
export async function deleteSession(kv: Deno.Kv, id: string): Promise<void> {
  await withLockRetry(() => kv.delete(keys.dashboardSession(id)));
}
