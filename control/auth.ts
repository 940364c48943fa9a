// Bearer-token auth for writes. The token comes from GRAYWALL_TOKEN, or the file GRAYWALL_TOKEN_FILE,
// or is generated once and kept in the data directory.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function loadToken(dataDir: string): string {
  if (process.env.GRAYWALL_TOKEN) return process.env.GRAYWALL_TOKEN.trim();
  if (process.env.GRAYWALL_TOKEN_FILE) return readFileSync(process.env.GRAYWALL_TOKEN_FILE, "utf8").trim();
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, "token");
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(24).toString("base64url")}\n`, { mode: 0o600 });
  return readFileSync(file, "utf8").trim();
}

// Hashing both sides first gives equal lengths, so the comparison time does not reveal the token's length.
const digest = (s: string) => createHash("sha256").update(s).digest();

/** True when the Authorization header carries the token; constant-time in the token's content. */
export function authorized(header: string | undefined, token: string): boolean {
  // The scheme is case-insensitive (RFC 9110 11.1).
  const m = /^bearer\s+(\S.*)$/i.exec((header ?? "").trim());
  if (!m) return false;
  return timingSafeEqual(digest(m[1]), digest(token));
}
