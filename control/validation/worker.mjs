// Entry of the validation worker thread: registers tsx's loader (worker threads do not inherit it), then
// runs worker.ts.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
