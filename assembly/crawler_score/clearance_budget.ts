// A solved challenge is a budget, not a pass: each clearance lets through challenge.page_budget page views
// per long window (sliding), counted in shared data so every worker spends the same budget. Over it, the
// clearance is revoked and its client is challenged again, at a higher difficulty. With fleet counts
// (fleet.ts) the page views every gateway let through on it count too. Pure.
import { RecordUpdate } from "../common/lib/slot_table";
import { fleetSliding } from "./signals";

/**
 * Record payload: window start i64 @0 | page views in it i32 @8 | in the previous one i32 @12 | the
 * fleet's count of them (fleet.ts: every gateway's page views on this clearance) @16, 16 bytes | page
 * views here since the fleet's last answer i32 @32.
 */
export const BUDGET_PAYLOAD = 36;
export const BUDGET_FLEET_AT: usize = 16;
export const BUDGET_PENDING_AT: usize = 32;

export class BudgetUpdate extends RecordUpdate {
  windowMs: i64 = 600000;
  budget: i32 = 300;
  /** Output: the clearance has spent its budget (this page view included). */
  over: bool = false;
  /** Fleet counts are on: the fleet's count (and what this gateway added since its last answer) counts too. */
  withFleet: bool = false;

  apply(p: usize, fresh: bool, now: i64): void {
    const w = this.windowMs;
    let start = fresh ? now : load<i64>(p);
    let pages = fresh ? 0 : load<i32>(p, 8);
    let prev = fresh ? 0 : load<i32>(p, 12);
    const elapsed = now - start;
    if (elapsed >= w) {
      // What the fleet has not answered for counts at most one window (its store away, say).
      store<i32>(p, 0, BUDGET_PENDING_AT);
      prev = elapsed < 2 * w ? pages : 0;
      pages = 0;
      start += (elapsed / w) * w;
    } else if (elapsed < 0) {
      start = now;
    }
    pages++;
    const left = 1.0 - <f64>(now - start) / <f64>w;
    const budget = <f64>this.budget;
    // The fleet's count, and what this gateway let through since its last answer.
    this.over = <f64>prev * left + <f64>pages > budget;
    if (this.withFleet) {
      const pending = fresh ? 1 : load<i32>(p, BUDGET_PENDING_AT) + 1;
      store<i32>(p, pending, BUDGET_PENDING_AT);
      if (fleetSliding(p + BUDGET_FLEET_AT, now, w) + <f64>pending > budget) this.over = true;
    }
    store<i64>(p, start);
    store<i32>(p, pages, 8);
    store<i32>(p, prev, 12);
  }
}
