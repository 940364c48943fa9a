// The web UI's files, the sign-in check and the OpenAPI document.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ROOT } from "../../runtime/paths.ts";
import type { Service } from "../server.ts";

export function uiRoutes(app: FastifyInstance, s: Service): void {
  const { requireToken } = s;
  app.get("/openapi.json", async () => app.swagger());

  const ui = (file: string, type: string) => async (_req: FastifyRequest, reply: FastifyReply) =>
    reply.type(type).send(readFileSync(join(ROOT, "control", "ui", file), "utf8"));
  app.get("/", ui("index.html", "text/html; charset=utf-8"));
  // The UI's ES modules, one per tab and what they share: every .js file of control/ui.
  for (const file of readdirSync(join(ROOT, "control", "ui")).filter((f) => f.endsWith(".js"))) app.get(`/${file}`, ui(file, "text/javascript; charset=utf-8"));
  app.get("/style.css", ui("style.css", "text/css; charset=utf-8"));
  app.get("/favicon.svg", ui("favicon.svg", "image/svg+xml"));
  app.get("/favicon.ico", ui("favicon.svg", "image/svg+xml"));

  // Lets the UI check a token at sign-in instead of on the first write.
  app.get("/api/session", { onRequest: requireToken }, async () => ({ ok: true }));
}
