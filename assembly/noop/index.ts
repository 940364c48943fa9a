// noop: the project's dispatch with every callback returning Continue. The benchmark's floor: what any
// AssemblyScript filter costs before it does anything.
export * from "../common/exports";
import { registerFilter, RootFilter } from "../common/filter";

function newRoot(): RootFilter {
  return new RootFilter("noop");
}

registerFilter("noop", newRoot);
