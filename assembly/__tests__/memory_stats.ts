// A StatSink in memory, for stage tests: names and values by id (id 0 is never handed out).
import { StatSink } from "../common/request/stage";

export class MemoryStats extends StatSink {
  names: string[] = [""];
  values: u64[] = [0];
  counter(name: string): u32 { return this.define(name); }
  tally(name: string): u32 { return this.define(name); }
  gauge(name: string): u32 { return this.define(name); }
  histogram(name: string): u32 { return this.define(name); }
  inc(id: u32): void { this.values[id] = this.values[id] + 1; }
  add(id: u32, by: i64): void { this.values[id] = this.values[id] + <u64>by; }
  set(id: u32, value: u64): void { this.values[id] = value; }
  read(id: u32): u64 { return this.values[id]; }
  value(name: string): u64 {
    const i = this.names.indexOf(name);
    return i < 0 ? <u64>0 : this.values[i];
  }
  private define(name: string): u32 {
    const i = this.names.indexOf(name);
    if (i >= 0) return <u32>i;
    this.names.push(name);
    this.values.push(0);
    return <u32>(this.names.length - 1);
  }
}
