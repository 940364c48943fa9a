// crawler_score's behaviour against scraper families and people: each client is simulated through the
// filter module itself (build/graywall.wasm on the proxy-wasm host emulator, in Node) with the shipped
// crawler document and a simulated clock, and the report says what share of the pages it asked for it
// got. Deterministic: fixed secrets, no host randomness, seeded choices. Part of npm run eval:crawler.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, wasmPath } from "../runtime/paths.ts";
import { solveNatively } from "../tests/support/challenge.ts";
import { type Exchange, ProxyHost } from "../tests/support/proxy_host.ts";
import { CHROME, HEADLESS, HTML, PNG } from "../tests/support/browser.ts";

/** The gateway: the shipped crawler document with fixed secrets (so runs repeat), the emulator's peer as the client. */
function gateway(): ProxyHost {
  const { client_address: _, fleet: __, ...doc } = JSON.parse(readFileSync(join(ROOT, "config", "filters", "crawler_score.json"), "utf8"));
  const h = new ProxyHost(wasmPath("graywall"), "graywall");
  h.noRandom = true;
  const cfg = { ...doc, challenge: { secret: "eval-challenge-secret-0123456789" }, client_id: { secret: "eval-client-id-secret-0123456789" } };
  if (!h.configure(JSON.stringify({ crawler_score: cfg }))) throw new Error(h.logs.join("\n"));
  return h;
}

/** A seeded generator (mulberry32): the same choices on every run. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Dest = "document" | "image";

function headers(path: string, ua: string, dest: Dest, cookies: Map<string, string>): [string, string][] {
  const h: [string, string][] = [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", path],
    ["user-agent", ua],
    ["accept", dest === "image" ? "image/avif,image/webp,*/*" : "text/html,application/xhtml+xml"],
    ["accept-language", "en-US,en;q=0.9"],
    ["accept-encoding", "gzip, br"],
    ["sec-fetch-mode", dest === "image" ? "no-cors" : "navigate"],
    ["sec-fetch-dest", dest],
  ];
  if (ua.includes("Chrome/")) h.push(["sec-ch-ua", '"Chromium";v="131"']);
  if (cookies.size > 0) h.push(["cookie", [...cookies].map(([k, v]) => `${k}=${v}`).join("; ")]);
  return h;
}

/** One simulated client: its address, user agent, cookie jar (kept or not), and what happened to it. */
class Client {
  cookies = new Map<string, string>();
  asked = 0;
  served = 0;
  challenged = 0;
  blocked = 0;
  constructor(
    private h: ProxyHost,
    public peer: string,
    private ua = CHROME,
    private keepCookies = true,
    /** Solves each challenge page it gets, as a person's (or a solver's) browser does. */
    private solves = false,
  ) {}

  /** One page view (dest document, or a page disguised as an image the site answers with HTML). */
  view(path: string, dest: Dest = "document"): Exchange {
    this.asked++;
    let ex = this.send(path, dest, HTML);
    if (ex.reply && ex.reply.status !== 403 && this.solves && ex.reply.body.includes("<script>")) {
      this.challenged++;
      const cookie = solveNatively(ex.reply.body);
      this.cookies.set(cookie.slice(0, cookie.indexOf("=")), cookie.slice(cookie.indexOf("=") + 1));
      ex = this.send(path, dest, HTML);
    }
    if (!ex.reply) this.served++;
    else if (ex.reply.status === 403) this.blocked++;
    else if (!this.solves) this.challenged++;
    return ex;
  }

  /** A subresource of the page (an image), which is not a page view. */
  image(path: string): void {
    this.send(path, "image", PNG);
  }

  private send(path: string, dest: Dest, response: [string, string][]): Exchange {
    const ex = this.h.request({
      headers: headers(path, this.ua, dest, this.keepCookies ? this.cookies : new Map()),
      responseHeaders: response,
      peer: this.peer,
    });
    if (this.keepCookies) {
      for (const [k, v] of ex.responseHeaders ?? []) {
        if (k !== "set-cookie") continue;
        const pair = v.split(";")[0];
        this.cookies.set(pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1));
      }
    }
    return ex;
  }
}

/** Runs `step(i)` at `perSecond` on the emulator's clock for `seconds`, ticking as Envoy does (500 ms). */
function run(h: ProxyHost, perSecond: number, seconds: number, step: (i: number) => void): void {
  const n = Math.round(perSecond * seconds);
  let nextTick = h.nowMs + 500;
  for (let i = 0; i < n; i++) {
    h.nowMs += 1000 / perSecond;
    while (h.nowMs >= nextTick) {
      h.tick();
      nextTick += 500;
    }
    step(i);
  }
}

export interface Outcome {
  family: string;
  kind: "scraper" | "person";
  asked: number;
  served: number;
  challenged: number;
  blocked: number;
}

const total = (family: string, kind: Outcome["kind"], clients: Client[]): Outcome => ({
  family,
  kind,
  asked: clients.reduce((a, c) => a + c.asked, 0),
  served: clients.reduce((a, c) => a + c.served, 0),
  challenged: clients.reduce((a, c) => a + c.challenged, 0),
  blocked: clients.reduce((a, c) => a + c.blocked, 0),
});

let cached: Outcome[] | undefined;

/** Each family for 30 minutes of simulated time (people as long as they read), on a gateway of its own. */
export function behaviour(): Outcome[] {
  cached ??= simulate();
  return cached;
}

function simulate(): Outcome[] {
  const out: Outcome[] = [];
  const MIN30 = 1800;
  const scraper = (family: string, perSecond: number, make: (h: ProxyHost) => { clients: Client[]; step: (i: number) => void }) => {
    const h = gateway();
    const { clients, step } = make(h);
    run(h, perSecond, MIN30, step);
    out.push(total(family, "scraper", clients));
  };
  scraper("sequential IDs, 5 pages/s", 5, (h) => {
    const c = new Client(h, "198.51.100.1:1");
    return { clients: [c], step: (i) => c.view(`/item/${1000 + i}`) };
  });
  scraper("random IDs, 2.5 pages/s", 2.5, (h) => {
    const c = new Client(h, "198.51.100.2:1");
    const r = seeded(1);
    return { clients: [c], step: () => c.view(`/item/${Math.floor(r() * 1e6)}`) };
  });
  scraper("distinct pages, 0.5 pages/s", 0.5, (h) => {
    const c = new Client(h, "198.51.100.3:1");
    return { clients: [c], step: (i) => c.view(`/story/${i * 7919}`) };
  });
  scraper("distinct pages padded with visits to /, 1 page/s", 1, (h) => {
    const c = new Client(h, "198.51.100.4:1");
    return { clients: [c], step: (i) => c.view(i % 2 === 0 ? "/" : `/story/${i * 7919}`) };
  });
  scraper("distinct pages over 20 addresses of one /24, 10 pages/s in all", 10, (h) => {
    const clients = Array.from({ length: 20 }, (_, k) => new Client(h, `203.0.113.${k + 1}:1`));
    return { clients, step: (i) => clients[i % 20].view(`/story/${i * 7919}`) };
  });
  scraper("pages disguised as images, 10 pages/s", 10, (h) => {
    const c = new Client(h, "198.51.100.6:1");
    return { clients: [c], step: (i) => c.view(`/story/${i * 7919}`, "image") };
  });
  scraper("dropping its cookie, distinct pages at 2 pages/s", 2, (h) => {
    const c = new Client(h, "198.51.100.7:1", CHROME, false);
    return { clients: [c], step: (i) => c.view(`/story/${i * 7919}`) };
  });
  scraper("solving every challenge (headless), distinct pages at 5 pages/s", 5, (h) => {
    const c = new Client(h, "198.51.100.8:1", HEADLESS, true, true);
    return { clients: [c], step: (i) => c.view(`/story/${i * 7919}`) };
  });
  scraper("solving every challenge (headless), polling 10 pages at 5 pages/s", 5, (h) => {
    const c = new Client(h, "198.51.100.9:1", HEADLESS, true, true);
    return { clients: [c], step: (i) => c.view(`/price/${i % 10}`) };
  });
  scraper("python-requests asking for HTML, 1 page/s", 1, (h) => {
    const c = new Client(h, "198.51.100.10:1", "python-requests/2.31.0");
    return { clients: [c], step: (i) => c.view(`/story/${i}`) };
  });

  // People: a busy reader (a page every 10 s, each with 10 images, mostly the same few pages), 50
  // readers behind one address (first visits included, each reading 12 pages at 20-60 s a page), and a
  // person paging through a gallery of 30 photos at 3 s each. A person's browser solves a challenge.
  {
    const h = gateway();
    const c = new Client(h, "192.0.2.10:1", CHROME, true, true);
    const r = seeded(2);
    run(h, 0.1, 600, () => {
      c.view(r() < 0.6 ? `/section/${Math.floor(r() * 5)}` : `/story/${Math.floor(r() * 1e6)}`);
      for (let k = 0; k < 10; k++) c.image(`/img/${Math.floor(r() * 1e6)}.webp`);
    });
    out.push(total("a busy reader (60 pages in 10 minutes, 10 images each)", "person", [c]));
  }
  {
    const h = gateway();
    const readers = Array.from({ length: 50 }, () => new Client(h, "100.64.0.1:1", CHROME, true, true));
    const r = seeded(3);
    const next = readers.map(() => h.nowMs + Math.floor(r() * 600000));
    const read = readers.map(() => 0);
    let nextTick = h.nowMs + 500;
    while (read.some((n) => n < 12)) {
      const k = next.indexOf(Math.min(...next.filter((_, j) => read[j] < 12)));
      h.nowMs = next[k];
      while (h.nowMs >= nextTick) {
        h.tick();
        nextTick += 500;
      }
      readers[k].view(read[k] === 0 ? "/" : `/reader/${k}/article/${read[k]}`);
      read[k]++;
      next[k] = read[k] < 12 ? h.nowMs + 20000 + Math.floor(r() * 40000) : Number.POSITIVE_INFINITY;
    }
    out.push(total("50 readers behind one address (12 pages each)", "person", readers));
  }
  {
    const h = gateway();
    const c = new Client(h, "192.0.2.11:1", CHROME, true, true);
    run(h, 1 / 3, 90, (i) => c.view(`/gallery/photo/${100 + i}`));
    out.push(total("a person paging a gallery (30 photos, 3 s each)", "person", [c]));
  }
  return out;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function renderBehaviour(rows: Outcome[]): string {
  const row = (o: Outcome) => `| ${o.family} | ${o.asked} | ${o.served} | ${pct(o.served / o.asked)} | ${o.challenged} | ${o.blocked} |`;
  const head = "| client | pages asked | pages got | share | challenges | blocks |\n|---|---|---|---|---|---|";
  return `## Behaviour: the share of pages each client got

Each client through the filter module itself (\`build/graywall.wasm\` on the proxy-wasm host emulator) with
the shipped crawler document (fixed secrets), on a simulated clock with Envoy's tick: scrapers for 30
minutes each, people for as long as they read. A solver and a person's browser solve every challenge
they get (counted under challenges, then the page is asked again); other clients do not.

### Scrapers (lower is better)

${head}
${rows
  .filter((o) => o.kind === "scraper")
  .map(row)
  .join("\n")}

### People (every page, at most one challenge each)

${head}
${rows
  .filter((o) => o.kind === "person")
  .map(row)
  .join("\n")}
`;
}
