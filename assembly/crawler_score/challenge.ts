// The proof-of-work challenge: an HTML navigation that scores for a challenge gets a small page whose
// script finds a nonce such that SHA-256(seed "." nonce) starts with `difficulty` zero bits, stores
// "<issued>.<bits>.<nonce>" in a clearance cookie and reloads. The seed is an HMAC of the client address,
// the user agent, the issue time and the difficulty under a secret, so only the gateway can issue one,
// and a clearance works only for the client it was issued to, until it expires.
// Without JavaScript the page's <noscript> meta refresh follows a signed wait token after no_js.wait_s;
// the gateway checks the wait itself and answers with a 303 and a no-JS clearance "<issued>.n.<mac>",
// whose budget is kept per address (weaker: it costs a scraper time, not work). Pure.
import { ObjReader } from "../common/lib/config";
import { leadingZeroBits, RotatingKeys, Sha256 } from "../common/lib/sha256";
import { isCookieName } from "../common/request/http";

export class ChallengeSpec {
  status: i32 = 429;
  body: string = "too many requests: please slow down\n";
  /** false: no page, every challenge is the plain reply above. */
  enabled: bool = true;
  /** Empty: this Envoy's own secret (envoy_secret.ts), resolved when the stage is built. */
  secret: string = "";
  /** The secret before the last rotation: clearances it signed stay valid until they expire. */
  previousSecret: string = "";
  difficulty: i32 = 14;
  /** Bits added per 10 points of score over the challenge threshold, and once more after a revoked clearance. */
  difficultyStep: i32 = 2;
  maxDifficulty: i32 = 22;
  /**
   * Page views a clearance lets through per long window (behaviour.long_window_ms, sliding): above it the
   * clearance is revoked and its client is challenged again, harder. Sized above a very active person.
   */
  pageBudget: i32 = 300;
  expirySeconds: i32 = 3600;
  cookie: string = "graywall_clearance";
  retryAfterSeconds: i32 = 30;
  /** The fallback for people without JavaScript. */
  noJs: NoJsSpec = new NoJsSpec();
}

export class NoJsSpec {
  enabled: bool = true;
  /** Seconds the gateway makes a client without JavaScript wait before it gets a clearance. */
  waitSeconds: i32 = 5;
  /** Page views per long window (sliding) that the no-JS clearances of one address let through together. */
  pageBudget: i32 = 100;
}

/** The query parameter that carries a wait token back (removed before the request goes on). */
export const WAIT_PARAM = "graywall_wait";
/** How long a wait token can be redeemed once its wait is over. */
const WAIT_REDEEM_SECONDS: i64 = 300;
export const CLEARANCE_NONE = 0;
export const CLEARANCE_WORK = 1;
export const CLEARANCE_NO_JS = 2;

export function readChallenge(r: ObjReader | null): ChallengeSpec {
  const c = new ChallengeSpec();
  if (r === null) return c;
  c.enabled = r.bool("enabled", true);
  c.status = <i32>r.int("status", c.status, 200, 599);
  c.body = r.str("body", c.body);
  c.secret = r.str("secret", "");
  c.previousSecret = r.str("previous_secret", "");
  if (c.secret.length > 0 && c.secret.length < 16) r.errors.add(r.at("secret"), "must be at least 16 characters");
  if (c.previousSecret.length > 0 && c.secret.length == 0) r.errors.add(r.at("previous_secret"), "needs secret");
  c.difficulty = <i32>r.int("difficulty", c.difficulty, 1, 28);
  c.difficultyStep = <i32>r.int("difficulty_step", c.difficultyStep, 0, 8);
  c.maxDifficulty = <i32>r.int("max_difficulty", c.maxDifficulty, 1, 28);
  if (c.maxDifficulty < c.difficulty) r.errors.add(r.at("max_difficulty"), "must be at least difficulty");
  c.pageBudget = <i32>r.int("page_budget", c.pageBudget, 1, 1000000);
  c.expirySeconds = <i32>r.int("expiry_s", c.expirySeconds, 60, 7 * 86400);
  c.cookie = r.str("cookie", c.cookie);
  if (!isCookieName(c.cookie)) r.errors.add(r.at("cookie"), "must be 1-64 characters of a-z, A-Z, 0-9, '_', '-'");
  c.retryAfterSeconds = <i32>r.int("retry_after_s", c.retryAfterSeconds, 1, 86400);
  const nj = r.obj("no_js");
  if (nj !== null) {
    c.noJs.enabled = nj.bool("enabled", true);
    c.noJs.waitSeconds = <i32>nj.int("wait_s", c.noJs.waitSeconds, 1, 600);
    c.noJs.pageBudget = <i32>nj.int("page_budget", c.noJs.pageBudget, 1, 1000000);
    nj.done();
  }
  r.done();
  return c;
}

export class Challenger {
  private keys: RotatingKeys;
  private sha: Sha256 = new Sha256();

  /** `secret`: the spec's, or this Envoy's when the spec names none (envoy_secret.ts). */
  constructor(public spec: ChallengeSpec, secret: string) {
    this.keys = new RotatingKeys(spec.enabled ? secret : "", spec.enabled ? spec.previousSecret : "");
  }

  /** Signs with `secret` from now on and still accepts `previous` (another VM's Envoy secret won the race). */
  rekey(secret: string, previous: string): void {
    if (this.spec.enabled) this.keys = new RotatingKeys(secret, previous);
  }

  get enabled(): bool { return this.keys.enabled; }

  /** The seed for this client, issue time and difficulty under key k: 32 hex characters. */
  seed(k: i32, client: string, userAgent: string, issued: i64, bits: i32): string {
    return this.keys.macHex(k, client + "\n" + userAgent + "\n" + issued.toString() + "\n" + bits.toString(), 16);
  }

  /**
   * What `value` is for this client now: a solved challenge (CLEARANCE_WORK), a no-JS clearance
   * (CLEARANCE_NO_JS, "<issued>.n.<mac>") when the fallback is on, or neither (CLEARANCE_NONE).
   */
  clearanceKind(value: string, client: string, userAgent: string, nowS: i64): i32 {
    const dot = value.indexOf(".");
    if (dot > 0 && dot <= 12 && value.length == dot + 3 + 32 && value.charCodeAt(dot + 1) == 0x6e && value.charCodeAt(dot + 2) == 0x2e) {
      const issued = digits(value, 0, dot);
      if (!this.spec.noJs.enabled || issued < 0 || issued > nowS + 60 || nowS - issued >= <i64>this.spec.expirySeconds) return CLEARANCE_NONE;
      const mac = value.substring(dot + 3);
      for (let k = 0; k < this.keys.count; k++) if (this.noJsMac(k, "clear", client, userAgent, issued) == mac) return CLEARANCE_NO_JS;
      return CLEARANCE_NONE;
    }
    return this.workDone(value, client, userAgent, nowS) ? CLEARANCE_WORK : CLEARANCE_NONE;
  }

  /** The MACs of the no-JS fallback: of a wait token ("wait") and of the clearance it buys ("clear"). */
  private noJsMac(k: i32, use: string, client: string, userAgent: string, issued: i64): string {
    return this.keys.macHex(k, "no-js " + use + "\n" + client + "\n" + userAgent + "\n" + issued.toString(), 16);
  }

  /**
   * For a wait token ("<issued>.<mac>") sent back by a client without JavaScript: its no-JS clearance
   * when the token is this client's and its wait is over (and not long over), else null.
   */
  redeemWait(token: string, client: string, userAgent: string, nowS: i64): string | null {
    const nj = this.spec.noJs;
    const dot = token.indexOf(".");
    if (!nj.enabled || dot <= 0 || dot > 12 || token.length != dot + 1 + 32) return null;
    const issued = digits(token, 0, dot);
    if (issued < 0 || nowS < issued + <i64>nj.waitSeconds || nowS >= issued + <i64>nj.waitSeconds + WAIT_REDEEM_SECONDS) return null;
    const mac = token.substring(dot + 1);
    for (let k = 0; k < this.keys.count; k++) {
      if (this.noJsMac(k, "wait", client, userAgent, issued) != mac) continue;
      // The clearance is issued when the wait began: the same token always buys the same clearance.
      return issued.toString() + ".n." + this.noJsMac(0, "clear", client, userAgent, issued);
    }
    return null;
  }

  /**
   * Whether `value` ("<issued>.<bits>.<nonce>") is a solved, unexpired challenge issued to this client.
   * The difficulty is part of the seed, so a client cannot claim less work than its page asked for.
   */
  private workDone(value: string, client: string, userAgent: string, nowS: i64): bool {
    const dot = value.indexOf(".");
    const dot2 = dot > 0 ? value.indexOf(".", dot + 1) : -1;
    if (dot <= 0 || dot > 12 || dot2 < 0 || dot2 - dot - 1 < 1 || dot2 - dot - 1 > 2 || value.length - dot2 - 1 < 1 || value.length - dot2 - 1 > 12) return false;
    const issued = digits(value, 0, dot);
    const bits = digits(value, dot + 1, dot2);
    const nonce = digits(value, dot2 + 1, value.length);
    if (issued < 0 || nonce < 0 || bits < <i64>this.spec.difficulty || bits > 28) return false;
    // Issued by a clock up to a minute ahead of this one (another worker or gateway), and not expired.
    if (issued > nowS + 60 || nowS - issued >= <i64>this.spec.expirySeconds) return false;
    const work = value.substring(dot2);
    for (let k = 0; k < this.keys.count; k++) {
      const d = this.sha.updateString(this.seed(k, client, userAgent, issued, <i32>bits) + work).finish();
      if (leadingZeroBits(d.dataStart) >= <i32>bits) return true;
    }
    return false;
  }

  /** The difficulty for a client at `score` (challenge threshold `at`), one step more after a revoked clearance. */
  difficultyFor(score: i32, at: i32, revoked: bool): i32 {
    const s = this.spec;
    let d = s.difficulty + s.difficultyStep * ((score - at) / 10);
    if (revoked) d += s.difficultyStep;
    return d < s.maxDifficulty ? d : s.maxDifficulty;
  }

  /**
   * The challenge page for this client, issued now, asking for `bits` leading zero bits; `path` is the
   * request's (with its query), where a client without JavaScript comes back after the wait.
   */
  page(client: string, userAgent: string, nowS: i64, bits: i32, path: string): string {
    const s = this.spec;
    let fallback = NO_SCRIPT;
    if (s.noJs.enabled) {
      const token = nowS.toString() + "." + this.noJsMac(0, "wait", client, userAgent, nowS);
      const back = sameSitePath(withoutParam(path, WAIT_PARAM));
      const url = back + (back.includes("?") ? "&" : "?") + WAIT_PARAM + "=" + token;
      const wait = s.noJs.waitSeconds.toString();
      fallback = '<noscript><meta http-equiv="refresh" content="' + wait + ";url=" + htmlAttribute(url) + '"><p>Without JavaScript, this page continues by itself in ' +
        wait + ' seconds (or <a href="' + htmlAttribute(url) + '">follow this link</a> then).</p></noscript>';
    }
    // Joined once: the page is KiB, and each `+` would copy all of it again.
    return [
      PAGE_HEAD, "var seed='", this.seed(0, client, userAgent, nowS, bits), "',issued=", nowS.toString(), ",bits=", bits.toString(),
      ",cookie='", s.cookie, "',maxAge=", s.expirySeconds.toString(), ";", PAGE_SCRIPT, fallback, PAGE_END,
    ].join("");
  }
}

/** `path` with every `name=` parameter of its query string removed. */
export function withoutParam(path: string, name: string): string {
  const q = path.indexOf("?");
  if (q < 0) return path;
  const hash = path.indexOf("#", q);
  const end = hash < 0 ? path.length : hash;
  const parts = path.substring(q + 1, end).split("&");
  let kept = "";
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p.length == 0 || p == name || p.startsWith(name + "=")) continue;
    kept += (kept.length > 0 ? "&" : "") + p;
  }
  return path.substring(0, q) + (kept.length > 0 ? "?" + kept : "") + (hash < 0 ? "" : path.substring(hash));
}

/** A path that stays on this site when used as a URL: "//host/x" or "/\\host" would leave it. */
export function sameSitePath(path: string): string {
  let i = 0;
  while (i < path.length && (path.charCodeAt(i) == 0x2f || path.charCodeAt(i) == 0x5c)) i++;
  return "/" + path.substring(i);
}

/** Text safe inside a double-quoted HTML attribute. */
function htmlAttribute(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x26) out += "&amp;";
    else if (c == 0x22) out += "&quot;";
    else if (c == 0x27) out += "&#39;";
    else if (c == 0x3c) out += "&lt;";
    else if (c == 0x3e) out += "&gt;";
    else out += String.fromCharCode(c);
  }
  return out;
}

/** The decimal number in s[from, to), or -1 when it is not one. */
function digits(s: string, from: i32, to: i32): i64 {
  let v: i64 = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

const PAGE_HEAD = '<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Checking your browser</title></head>' +
  "<body><p>Checking your browser before you continue. This takes a moment and needs JavaScript.</p><script>";

// SHA-256 in plain JavaScript (crypto.subtle exists only on secure origins, and gateways also serve HTTP).
const PAGE_SCRIPT = "var K=[" +
  "0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3," +
  "0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da," +
  "0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13," +
  "0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070," +
  "0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208," +
  "0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];" +
  "function r(x,n){return(x>>>n)|(x<<(32-n));}" +
  "function sha(s){var b=[],i,o,t;for(i=0;i<s.length;i++)b.push(s.charCodeAt(i)&255);var l=b.length*8;b.push(128);" +
  "while(b.length%64!=56)b.push(0);for(i=7;i>=0;i--)b.push(i>3?0:(l>>>(8*i))&255);" +
  "var H=[0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19],W=[];" +
  "for(o=0;o<b.length;o+=64){for(i=0;i<16;i++)W[i]=(b[o+4*i]<<24)|(b[o+4*i+1]<<16)|(b[o+4*i+2]<<8)|b[o+4*i+3];" +
  "for(i=16;i<64;i++)W[i]=(W[i-16]+(r(W[i-15],7)^r(W[i-15],18)^(W[i-15]>>>3))+W[i-7]+(r(W[i-2],17)^r(W[i-2],19)^(W[i-2]>>>10)))|0;" +
  "var a=H[0],c=H[1],d=H[2],e=H[3],f=H[4],g=H[5],h=H[6],k=H[7];" +
  "for(i=0;i<64;i++){t=(k+(r(f,6)^r(f,11)^r(f,25))+((f&g)^(~f&h))+K[i]+W[i])|0;" +
  "var u=((r(a,2)^r(a,13)^r(a,22))+((a&c)^(a&d)^(c&d)))|0;k=h;h=g;g=f;f=(e+t)|0;e=d;d=c;c=a;a=(t+u)|0;}" +
  "H[0]=(H[0]+a)|0;H[1]=(H[1]+c)|0;H[2]=(H[2]+d)|0;H[3]=(H[3]+e)|0;H[4]=(H[4]+f)|0;H[5]=(H[5]+g)|0;H[6]=(H[6]+h)|0;H[7]=(H[7]+k)|0;}" +
  "return H;}" +
  "function ok(H){var z=bits,i=0;while(z>=32){if(H[i++]!==0)return false;z-=32;}return z===0||(H[i]>>>(32-z))===0;}" +
  "for(var n=0;;n++){if(ok(sha(seed+'.'+n)))break;}" +
  "document.cookie=cookie+'='+issued+'.'+bits+'.'+n+'; path=/; max-age='+maxAge+'; samesite=lax';location.reload();" +
  "</script>";
const NO_SCRIPT = "<noscript>Please enable JavaScript to continue.</noscript>";
const PAGE_END = "</body></html>";
