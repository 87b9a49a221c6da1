/**
 * The review list's filters as they arrive in a query string, shared by the API and the
 * dashboard.
 *
 * @module
 */
import { z } from "zod";
import type { OwnerFilter } from "../kv/queries.ts";

/** `org:123`, `user:123`, or a bare `123` (either type). */
export const OwnerFilterText = z.string().regex(
  /^((org|user):)?[\w.-]{1,64}$/,
  "owner must be <id> or <org|user>:<id>",
);

/** `owner/name`. */
export const RepoText = z.string().regex(
  /^[\w.-]{1,100}\/[\w.-]{1,100}$/,
  "repo must be <owner>/<name>",
);

/**
 * The owner filter named by a checked {@link OwnerFilterText}: `org:123` / `user:123` name one
 * owner; a bare `123` matches either type.
 *
 * @example
 * ```ts
 * ownerFilterOf("org:1"); // { type: "org", id: "1" }
 * ownerFilterOf("1"); // { id: "1" }
 * ```
 */
export function ownerFilterOf(text: string | undefined): OwnerFilter | undefined {
  if (text === undefined || text === "") return undefined;
  const [a, b] = text.split(":");
  return b === undefined ? { id: a } : { type: a as "org" | "user", id: b };
}
