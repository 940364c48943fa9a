// Traffic like people's, for the demo's releases: simulated users with a browser's headers, each keeping
// its cookies (a `uid` of its own, which releases split on, and whatever the gateway sets), pausing
// between pages as people do. Prints every 5 s what they got and which version served them.
// Usage: npm run demo:traffic [-- --url http://127.0.0.1:10000 --users 40 --seconds 0]   (0: until Ctrl-C)
import { request as httpRequest } from "node:http";

const BROWSER = {
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  "accept-language": "en-US,en;q=0.9",
  "accept-encoding": "identity",
  "sec-fetch-mode": "navigate",
  "sec-fetch-dest": "document",
};
const PAGES = ["/", "/products", "/products/1", "/products/2", "/products/3", "/cart", "/help", "/account"];

export interface TrafficStats {
  requests: number;
  /** Answers by status. */
  statuses: Record<number, number>;
  /** Answers by the version that served them (the demo's upstreams say which they are). */
  versions: Record<string, number>;
}

interface Answer {
  status: number;
  setCookies: string[];
  version?: string;
}

function get(url: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { headers, timeout: 10000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        let version: string | undefined;
        try {
          version = JSON.parse(Buffer.concat(chunks).toString()).version;
        } catch {
          /* a local reply */
        }
        const sc = res.headers["set-cookie"];
        resolve({ status: res.statusCode ?? 0, setCookies: Array.isArray(sc) ? sc : [], version });
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve({ status: 0, setCookies: [] }));
    req.end();
  });
}

/**
 * Runs `users` simulated people against `url` until `signal` aborts (or for `seconds`, when positive),
 * each a page every 1-3 s. Resolves with the totals.
 */
export async function runTraffic(o: {
  url: string;
  users: number;
  seconds?: number;
  signal?: AbortSignal;
  onTick?: (s: TrafficStats) => void;
}): Promise<TrafficStats> {
  const stats: TrafficStats = { requests: 0, statuses: {}, versions: {} };
  const until = o.seconds && o.seconds > 0 ? Date.now() + o.seconds * 1000 : Number.POSITIVE_INFINITY;
  const running = () => Date.now() < until && !o.signal?.aborted;
  const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const tick = o.onTick ? setInterval(() => o.onTick!(stats), 5000) : undefined;
  const user = async (n: number) => {
    const jar = new Map<string, string>([["uid", `u${n}`]]);
    await pause(Math.random() * 2000);
    while (running()) {
      const page = PAGES[Math.floor(Math.random() * PAGES.length)];
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
      const a = await get(`${o.url}${page}`, { ...BROWSER, cookie });
      stats.requests++;
      stats.statuses[a.status] = (stats.statuses[a.status] ?? 0) + 1;
      if (a.version) stats.versions[a.version] = (stats.versions[a.version] ?? 0) + 1;
      for (const line of a.setCookies) {
        const pair = line.split(";")[0];
        const at = pair.indexOf("=");
        if (at > 0) jar.set(pair.slice(0, at), pair.slice(at + 1));
      }
      await pause(1000 + Math.random() * 2000);
    }
  };
  await Promise.all(Array.from({ length: o.users }, (_, n) => user(n)));
  if (tick) clearInterval(tick);
  return stats;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const url = opt("--url", "http://127.0.0.1:10000");
  const users = Number(opt("--users", "40"));
  const stop = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => stop.abort());
  console.log(`[traffic] ${users} simulated people browsing ${url} (a page every 1-3 s each, cookies kept); Ctrl-C stops`);
  const show = (s: TrafficStats) =>
    console.log(`[traffic] ${s.requests} pages: statuses ${JSON.stringify(s.statuses)}, served by ${JSON.stringify(s.versions)}`);
  const total = await runTraffic({ url, users, seconds: Number(opt("--seconds", "0")), signal: stop.signal, onTick: show });
  show(total);
}
