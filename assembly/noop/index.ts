// noop: the project's dispatch with every callback returning Continue. The benchmark's floor: what any
// AssemblyScript filter costs before it does anything.
export * from "../common/abi/exports";
import { registerFilter, RootFilter } from "../common/abi/filter";

function newRoot(): RootFilter {
  return new RootFilter("noop");
}

registerFilter("noop", newRoot);
