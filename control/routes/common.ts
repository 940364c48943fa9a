// What the route modules share: the filter names and their path parameter, ETags, If-Match, body limits.
import type { FastifyRequest } from "fastify";
import { FILTERS } from "../../runtime/filters.ts";

export const NAMES = FILTERS.map((f) => f.name);
export const filterParam = {
  type: "object",
  required: ["filter"],
  properties: { filter: { type: "string", enum: NAMES } },
} as const;
export const etag = (v: number) => `"${v}"`;

/** Writes carry whole documents (a 100k-entry ip_list is about 2.5 MB); the open endpoints carry less. */
export const WRITE_BODY_LIMIT = 16 * 1024 * 1024;
export const VALIDATE_BODY_LIMIT = 4 * 1024 * 1024;
export const PREVIEW_BODY_LIMIT = 256 * 1024;

/** If-Match as a version number; undefined when absent or not one of ours. */
export function ifMatch(req: FastifyRequest): number | undefined {
  const h = req.headers["if-match"];
  const m = typeof h === "string" ? /^"?(\d+)"?$/.exec(h.trim()) : null;
  return m ? Number(m[1]) : undefined;
}
