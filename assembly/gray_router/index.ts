// gray_router: picks a target per request and hands it to Envoy's route table as a header.
export * from "../common/exports";
import { registerFilter, RootFilter, StreamFilter, HeadersStatus, DataStatus } from "../common/filter";
import {
  MapType, BufferType, getHeaderEncoded, replaceHeader, removeHeader,
  getBufferString, defineMetric, incrementMetric, MetricType,
} from "../common/host";
import { ConfigErrors } from "../common/config";
import { IpAddr } from "../common/ip";
import { COOKIE_KEY, PATH_KEY, hostClientIp, statName } from "../common/request";
import { findCookie, findQueryParam } from "../common/http";
import { isValidJson, lookupJsonPath } from "../common/json";
import { compileGrayConfig, GrayConfig } from "./config";
import { firstMatch, RequestView } from "./matcher";

const ROOT_ID = "gray_router";

/** Immutable per configuration: the compiled rules plus what the hot path needs pre-built. */
class Compiled {
  routingKey: ArrayBuffer;
  responseKey: ArrayBuffer;
  headerKeys: ArrayBuffer[] = [];
  // Metric ids: per rule, and per target (index = rule, last = default target).
  ruleMetric: u32[] = [];
  targetMetric: u32[] = [];

  constructor(public cfg: GrayConfig) {
    this.routingKey = String.UTF8.encode(cfg.routingHeader);
    this.responseKey = String.UTF8.encode(cfg.responseHeader);
    for (let i = 0; i < cfg.headerNames.length; i++) this.headerKeys.push(String.UTF8.encode(cfg.headerNames[i]));
    for (let i = 0; i < cfg.rules.length; i++) {
      const r = cfg.rules[i];
      this.ruleMetric.push(defineMetric(MetricType.Counter, "graywall.gray_router.rule." + statName(r.name) + ".matched"));
      this.targetMetric.push(defineMetric(MetricType.Counter, "graywall.gray_router.target." + statName(r.target) + ".routed"));
    }
    this.targetMetric.push(defineMetric(MetricType.Counter, "graywall.gray_router.target." + statName(cfg.defaultTarget) + ".routed"));
  }
}

class GrayRoot extends RootFilter {
  compiled: Compiled | null = null;

  configure(config: string): string | null {
    const errors = new ConfigErrors();
    const cfg = compileGrayConfig(config, errors);
    if (cfg === null) return errors.summary();
    this.compiled = new Compiled(cfg);
    return null;
  }

  newStream(): StreamFilter {
    const c = this.compiled;
    if (c === null) return new StreamFilter();
    return new GrayStream(c);
  }
}

const NOT_FETCHED = "\u0000";

/** The request as seen through the host, fetched lazily and at most once per input. */
class HostRequest extends RequestView {
  headerValues: Array<string | null>;
  cookieHeader: string | null = NOT_FETCHED;
  path: string | null = NOT_FETCHED;
  ip: IpAddr = new IpAddr();
  ipState: i32 = 0; // 0 unknown, 1 resolved, 2 none
  /** Set while deciding without the body when a rule asked for a body field. */
  bodyWanted: bool = false;
  body: string | null = null;
  bodyReady: bool = false;
  bodyValid: bool = false;

  constructor(public c: Compiled) {
    super();
    this.headerValues = new Array<string | null>(c.headerKeys.length);
    for (let i = 0; i < this.headerValues.length; i++) this.headerValues[i] = NOT_FETCHED;
  }

  header(slot: i32, name: string): string | null {
    let v = unchecked(this.headerValues[slot]);
    if (v === NOT_FETCHED) {
      v = getHeaderEncoded(MapType.RequestHeaders, unchecked(this.c.headerKeys[slot]));
      this.headerValues[slot] = v;
    }
    return v;
  }

  cookie(name: string): string | null {
    if (this.cookieHeader === NOT_FETCHED) this.cookieHeader = getHeaderEncoded(MapType.RequestHeaders, COOKIE_KEY);
    const h = this.cookieHeader;
    if (h === null) return null;
    return findCookie(h, name);
  }

  query(name: string): string | null {
    if (this.path === NOT_FETCHED) this.path = getHeaderEncoded(MapType.RequestHeaders, PATH_KEY);
    const p = this.path;
    if (p === null) return null;
    return findQueryParam(p, name);
  }

  clientIp(): IpAddr | null {
    if (this.ipState == 0) this.ipState = hostClientIp(this.c.cfg.xffTrustedHops, this.ip) ? 1 : 2;
    if (this.ipState == 1) return this.ip;
    return null;
  }

  bodyField(slot: i32, segments: string[]): string | null {
    if (!this.bodyReady) { this.bodyWanted = true; return null; }
    const b = this.body;
    if (b === null || !this.bodyValid) return null;
    return lookupJsonPath(b, segments);
  }
}

class GrayStream extends StreamFilter {
  req: HostRequest;
  target: string = "";
  waitingForBody: bool = false;

  constructor(public c: Compiled) {
    super();
    this.req = new HostRequest(c);
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    // Clients must not pick their own target.
    removeHeader(MapType.RequestHeaders, this.c.routingKey);
    if (this.c.cfg.needsBody && !endOfStream) {
      const idx = firstMatch(this.c.cfg, this.req);
      if (this.req.bodyWanted) {
        this.waitingForBody = true;
        return HeadersStatus.StopIteration;
      }
      this.route(idx);
      return HeadersStatus.Continue;
    }
    this.req.bodyReady = true; // no body: body fields are simply absent
    this.route(firstMatch(this.c.cfg, this.req));
    return HeadersStatus.Continue;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataStatus {
    if (!this.waitingForBody) return DataStatus.Continue;
    const tooLarge = <i32>bodySize > this.c.cfg.maxBodyBytes;
    if (!endOfStream && !tooLarge) return DataStatus.StopIterationAndBuffer;
    this.waitingForBody = false;
    this.req.bodyReady = true;
    if (!tooLarge && bodySize > 0) {
      const body = getBufferString(BufferType.RequestBody, 0, bodySize);
      this.req.body = body;
      this.req.bodyValid = body !== null && isValidJson(body);
    }
    this.route(firstMatch(this.c.cfg, this.req));
    return DataStatus.Continue;
  }

  route(idx: i32): void {
    const cfg = this.c.cfg;
    if (idx >= 0) {
      this.target = cfg.rules[idx].target;
      incrementMetric(this.c.ruleMetric[idx]);
      incrementMetric(this.c.targetMetric[idx]);
    } else {
      this.target = cfg.defaultTarget;
      incrementMetric(this.c.targetMetric[cfg.rules.length]);
    }
    // Envoy's wasm host clears the route cache on any request-header change, so the route table sees this.
    replaceHeader(MapType.RequestHeaders, this.c.routingKey, this.target);
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    if (this.c.cfg.responseHeader.length > 0 && this.target.length > 0) {
      replaceHeader(MapType.ResponseHeaders, this.c.responseKey, this.target);
    }
    return HeadersStatus.Continue;
  }
}

registerFilter(ROOT_ID, (): RootFilter => new GrayRoot(ROOT_ID));
