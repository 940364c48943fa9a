// A solved challenge is a budget, not a pass: each clearance lets through challenge.page_budget page views
// per long window (sliding), counted in shared data so every worker spends the same budget. Over it, the
// clearance is revoked and its client is challenged again, at a higher difficulty. Pure.
import { RecordUpdate } from "../common/lib/slot_table";

/** Record payload: window start i64 @0 | page views in it i32 @8 | in the previous one i32 @12. */
export const BUDGET_PAYLOAD = 16;

export class BudgetUpdate extends RecordUpdate {
  windowMs: i64 = 600000;
  budget: i32 = 300;
  /** Output: the clearance has spent its budget (this page view included). */
  over: bool = false;

  apply(p: usize, fresh: bool, now: i64): void {
    const w = this.windowMs;
    let start = fresh ? now : load<i64>(p);
    let pages = fresh ? 0 : load<i32>(p, 8);
    let prev = fresh ? 0 : load<i32>(p, 12);
    const elapsed = now - start;
    if (elapsed >= w) {
      prev = elapsed < 2 * w ? pages : 0;
      pages = 0;
      start += (elapsed / w) * w;
    } else if (elapsed < 0) {
      start = now;
    }
    pages++;
    const left = 1.0 - <f64>(now - start) / <f64>w;
    this.over = <f64>prev * left + <f64>pages > <f64>this.budget;
    store<i64>(p, start);
    store<i32>(p, pages, 8);
    store<i32>(p, prev, 12);
  }
}
