// The proof-of-work challenge: an HTML navigation that scores for a challenge gets a small page whose
// script finds a nonce such that SHA-256(seed "." nonce) starts with `difficulty` zero bits, stores
// "<issued>.<nonce>" in a clearance cookie and reloads. The seed is an HMAC of the client address, the
// user agent and the issue time under a configured secret, so only the gateway can issue one, and a
// clearance works only for the client it was issued to, until it expires. Pure.
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
}

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
   * Whether `value` ("<issued>.<bits>.<nonce>") is a solved, unexpired challenge issued to this client.
   * The difficulty is part of the seed, so a client cannot claim less work than its page asked for.
   */
  verify(value: string, client: string, userAgent: string, nowS: i64): bool {
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

  /** The challenge page for this client, issued now, asking for `bits` leading zero bits. */
  page(client: string, userAgent: string, nowS: i64, bits: i32): string {
    const s = this.spec;
    return PAGE_HEAD + "var seed='" + this.seed(0, client, userAgent, nowS, bits) + "',issued=" + nowS.toString() + ",bits=" +
      bits.toString() + ",cookie='" + s.cookie + "',maxAge=" + s.expirySeconds.toString() + ";" + PAGE_SCRIPT;
  }
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
  "</script><noscript>Please enable JavaScript to continue.</noscript></body></html>";
