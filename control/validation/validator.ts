// Runs the filters' compilers off the event loop, one call at a time, in a worker thread with a time
// and memory limit. A call that runs over its time ends the worker (a fresh one takes the next call);
// a call that fails inside the bindings gets a fresh instance there. Nothing a document does can leave
// later calls failing.
import { Worker } from "node:worker_threads";

export type Call = { id: number; op: "validate"; filter: string; json: string } | { id: number; op: "preview"; config: unknown; request: unknown };
export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/** Raised when the compilers could not give an answer (time, memory, a crash): not a verdict on the document. */
export class ValidatorUnavailable extends Error {}

export interface ValidatorLimits {
  /** Per call (default 5 s). */
  timeoutMs?: number;
  /** The worker's JavaScript heap (default 256 MiB); the bindings' own memory is capped by their build. */
  heapMb?: number;
}

type Pending = { call: Call; open: boolean; resolve: (v: unknown) => void; reject: (e: Error) => void };

/** Calls from callers without the token that may wait at once; more are refused as busy. */
export const MAX_OPEN_WAITING = 8;

/** Raised when too many open (unauthenticated) calls wait already: the caller should come back later. */
export class ValidatorBusy extends Error {}

export class Validator {
  private worker?: Worker;
  private queue: Pending[] = [];
  private inFlight?: Pending;
  private timer?: NodeJS.Timeout;
  private nextId = 1;
  private closed = false;
  /** Workers replaced after a time-out or a crash (for tests and logs). */
  restarts = 0;

  constructor(private limits: ValidatorLimits = {}) {}

  /**
   * "" when the filter accepts the JSON document, else its errors, one per line. `open`: a caller without
   * the token. Open calls wait behind every call with the token (an operator's publish is never queued
   * behind anyone's validations), and at most MAX_OPEN_WAITING of them wait at once.
   */
  validate(filter: string, json: string, open = false): Promise<string> {
    return this.enqueue({ id: this.nextId++, op: "validate", filter, json }, open) as Promise<string>;
  }

  /** gray_router's choice for a sample request (`open` as for validate). */
  preview(config: unknown, request: unknown, open = false): Promise<{ target?: string; rule?: string | null; error?: string }> {
    return this.enqueue({ id: this.nextId++, op: "preview", config, request }, open) as Promise<{ target?: string; rule?: string | null; error?: string }>;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    for (const p of this.queue.splice(0)) p.reject(new ValidatorUnavailable("the validator is closed"));
    this.inFlight?.reject(new ValidatorUnavailable("the validator is closed"));
    this.inFlight = undefined;
    await this.worker?.terminate();
    this.worker = undefined;
  }

  private enqueue(call: Call, open: boolean): Promise<unknown> {
    if (this.closed) return Promise.reject(new ValidatorUnavailable("the validator is closed"));
    if (open && this.queue.filter((p) => p.open).length >= MAX_OPEN_WAITING) {
      return Promise.reject(new ValidatorBusy("the validator is busy with other callers' documents: try again shortly"));
    }
    return new Promise((resolve, reject) => {
      const p: Pending = { call, open, resolve, reject };
      // A call with the token goes ahead of every open one.
      const firstOpen = open ? -1 : this.queue.findIndex((q) => q.open);
      if (firstOpen < 0) this.queue.push(p);
      else this.queue.splice(firstOpen, 0, p);
      this.next();
    });
  }

  private spawn(): Worker {
    // Compiled for the package (validator.js), the worker is plain JavaScript; from the sources it needs tsx's loader.
    const w = new Worker(new URL(import.meta.url.endsWith(".js") ? "./worker.js" : "./worker.mjs", import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: this.limits.heapMb ?? 256 },
    });
    w.on("message", (r: Reply) => {
      const p = this.inFlight;
      if (!p || p.call.id !== r.id) return;
      this.settle();
      if (r.ok) p.resolve(r.value);
      else p.reject(new ValidatorUnavailable(`the filter's compiler failed on this document (${r.error})`));
    });
    const lost = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.restarts++;
      const p = this.inFlight;
      this.settle();
      p?.reject(new ValidatorUnavailable(why));
    };
    w.on("error", (e: Error) => lost(`the validator failed: ${e.message}`));
    w.on("exit", (code) => lost(`the validator stopped (exit ${code})`));
    // After the listeners (adding one refs the port again): an idle worker never keeps the process alive;
    // a call in flight does, through its timer.
    w.unref();
    return w;
  }

  private settle(): void {
    clearTimeout(this.timer);
    this.inFlight = undefined;
    queueMicrotask(() => this.next());
  }

  private next(): void {
    if (this.inFlight || this.closed) return;
    const p = this.queue.shift();
    if (!p) return;
    this.inFlight = p;
    this.worker ??= this.spawn();
    const w = this.worker;
    const timeoutMs = this.limits.timeoutMs ?? 5000;
    this.timer = setTimeout(() => {
      if (this.inFlight !== p) return;
      this.worker = undefined;
      this.restarts++;
      this.settle();
      void w.terminate();
      p.reject(new ValidatorUnavailable(`validation took longer than ${timeoutMs / 1000} s`));
    }, timeoutMs);
    w.postMessage(p.call);
  }
}
