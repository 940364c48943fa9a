// Files the service and the tools write: atomically, so a reader or a crash never sees half of one.
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Writes a file so that readers see the old or the new content, never a mix: write, fsync, rename. */
export function writeAtomic(file: string, content: string, mode?: number): void {
  const tmp = join(file, "..", `.${file.split("/").pop()}.${process.pid}.tmp`);
  writeFileSync(tmp, content, mode === undefined ? undefined : { mode });
  const fd = openSync(tmp, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dir = openSync(join(file, ".."), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
