// A webhook receiver for tests: a real HTTP server on a free loopback port that keeps every JSON body it
// is sent with its Idempotency-Key, and can answer 500 to the first calls.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  key: string;
  body: Record<string, unknown>;
  status: number;
}

export interface Receiver {
  url: string;
  calls: Received[];
  close(): Promise<void>;
}

export async function startReceiver(opts: { failFirst?: number } = {}): Promise<Receiver> {
  const calls: Received[] = [];
  let failures = opts.failFirst ?? 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const status = failures > 0 ? 500 : 200;
      if (failures > 0) failures--;
      calls.push({ key: String(req.headers["idempotency-key"] ?? ""), body: JSON.parse(Buffer.concat(chunks).toString() || "{}"), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook/secret-part`,
    calls,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
