// The OpenAPI document served at /openapi.json.
import { VERSION } from "../runtime/release.ts";

export function openapi(filters: string[]) {
  const filter = { name: "filter", in: "path", required: true, schema: { type: "string", enum: filters } };
  const ifMatch = { name: "If-Match", in: "header", required: true, description: "the version the change is based on", schema: { type: "string" } };
  const err = (d: string) => ({ description: d, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
  const auth = [{ bearer: [] }];
  return {
    openapi: "3.0.3",
    info: { title: "graywall-control", version: VERSION, description: "Rule documents for Graywall's Envoy filters: read, validate, update, roll back." },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        Error: { type: "object", properties: { error: { type: "string" }, errors: { type: "array", items: { $ref: "#/components/schemas/FieldError" } } } },
        FieldError: { type: "object", properties: { field: { type: "string" }, message: { type: "string" } } },
        Version: {
          type: "object",
          properties: {
            version: { type: "integer" },
            author: { type: "string" },
            time: { type: "string", format: "date-time" },
            diff: { type: "array", items: { type: "object" } },
            restoredFrom: { type: "integer" },
          },
        },
      },
    },
    paths: {
      "/api/filters": { get: { summary: "Each filter with its current version", responses: { 200: { description: "list" } } } },
      "/api/alerts": {
        get: {
          summary: "Alerts firing now and the last events (GRAYWALL_ALERT_WEBHOOKS); the number of webhooks, never their URLs",
          responses: { 200: { description: "webhooks, active, recent" } },
        },
      },
      "/api/filters/{filter}": {
        get: { summary: "The current document (ETag = version)", parameters: [filter], responses: { 200: { description: "document" } } },
        put: {
          summary: "Replace the document; a new version",
          security: auth,
          parameters: [filter, ifMatch],
          requestBody: {
            required: true,
            content: {
              "application/json": { schema: { type: "object", required: ["doc"], properties: { doc: { type: "object" }, author: { type: "string" } } } },
            },
          },
          responses: {
            200: { description: "the new version", content: { "application/json": { schema: { $ref: "#/components/schemas/Version" } } } },
            401: err("no or wrong bearer token"),
            409: err("stale If-Match: someone changed it first; nothing was lost"),
            422: err("the filter would reject the document (field-level errors)"),
            428: err("If-Match missing"),
          },
        },
      },
      "/api/filters/{filter}/validate": {
        post: { summary: "Check a document with the filter's own validation", parameters: [filter], responses: { 200: { description: "{ok, errors}" } } },
      },
      "/api/filters/{filter}/versions": {
        get: { summary: "Version history, newest first, with diffs", parameters: [filter], responses: { 200: { description: "versions" } } },
      },
      "/api/filters/{filter}/versions/{version}": {
        get: {
          summary: "One earlier version",
          parameters: [filter, { name: "version", in: "path", required: true, schema: { type: "integer" } }],
          responses: { 200: { description: "version" }, 404: err("no such version") },
        },
      },
      "/api/filters/{filter}/rollback": {
        post: {
          summary: "Restore an earlier version as a new version",
          security: auth,
          parameters: [filter, ifMatch],
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: { type: "object", required: ["version"], properties: { version: { type: "integer" }, author: { type: "string" } } },
              },
            },
          },
          responses: { 200: { description: "the new version" }, 401: err("unauthorized"), 404: err("no such version"), 409: err("stale If-Match") },
        },
      },
      "/api/preview": {
        post: {
          summary: "Which target gray_router would pick for a sample request (the filter's own matcher)",
          responses: { 200: { description: "{target, rule} or {error}" } },
        },
      },
      "/api/stats": {
        get: { summary: "Live graywall counters from Envoy's admin", responses: { 200: { description: "name -> value" }, 502: err("Envoy unreachable") } },
      },
    },
  };
}
