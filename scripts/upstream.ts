// A demo/test upstream: answers which version it is and echoes what it received.
// Usage: tsx scripts/upstream.ts <name> <port>
import { createServer, type Server } from "node:http";

export interface UpstreamOptions {
  name: string;
  port: number;
  /** Status to answer with; tests flip this to simulate a failing version. */
  status?: number;
}

/** How a test upstream misbehaves: a share of requests answered with `status`, and added latency. */
export interface Faults {
  failRate?: number;
  status?: number;
  delayMs?: number;
}

function queryOf(url: string | undefined): URLSearchParams {
  const at = (url ?? "").indexOf("?");
  return new URLSearchParams(at < 0 ? "" : url!.slice(at + 1));
}

export function startUpstream(opts: UpstreamOptions): Promise<Server & { setStatus(s: number): void; setFaults(f: Faults): void }> {
  let status = opts.status ?? 200;
  let faults: Faults = {};
  const server = createServer((req, res) => {
    // Test hooks: ?delay=<ms> answers late, ?status=<code> answers with that status, ?as=html answers
    // with an HTML content type (a site's page, whatever the request's headers said). Parsed without
    // URL(), which throws on paths like "//" or "//%zz": any request must get an answer.
    const q = queryOf(req.url);
    const delay = Number(q.get("delay") ?? 0) || (faults.delayMs ?? 0);
    const forced = Number(q.get("status") ?? 0) || (Math.random() < (faults.failRate ?? 0) ? (faults.status ?? 503) : 0);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.stringify({
        version: opts.name,
        method: req.method,
        path: req.url,
        headers: req.headers,
        bodyBytes: Buffer.concat(chunks).length,
      });
      const send = () => {
        const type = q.get("as") === "html" ? "text/html; charset=utf-8" : "application/json";
        res.writeHead(forced || status, { "content-type": type, "x-upstream": opts.name });
        res.end(body);
      };
      if (delay > 0) setTimeout(send, Math.min(delay, 10000));
      else send();
    });
  });
  // Idle connections stay open until Envoy closes them (its upstream idle timeout, an hour by default).
  // Node's default closes them after 5 s, and a request Envoy sends on one as Node closes it fails with
  // 503 (connection termination): a race no real upstream behind Envoy should be set up to lose.
  server.keepAliveTimeout = 0;
  const s = server as Server & { setStatus(s: number): void; setFaults(f: Faults): void };
  s.setStatus = (v: number) => {
    status = v;
  };
  s.setFaults = (f: Faults) => {
    faults = f;
  };
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, "127.0.0.1", () => resolve(s));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [name, port] = process.argv.slice(2);
  if (!name || !port) {
    console.error("usage: tsx scripts/upstream.ts <name> <port>");
    process.exit(2);
  }
  startUpstream({ name, port: Number(port) }).then(() => console.log(`upstream ${name} on 127.0.0.1:${port}`));
}
