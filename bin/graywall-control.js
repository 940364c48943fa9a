#!/usr/bin/env node
// The npm package's graywall-control: JavaScript compiled from the TypeScript sources when the package is
// packed (npm pack runs `prepack`: tsc -p tsconfig.build.json), so nothing compiles at run time.
const { runCli } = await import("../dist/control/main.js");
await runCli(process.argv.slice(2));
