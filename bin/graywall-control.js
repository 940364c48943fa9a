#!/usr/bin/env node
// The npm package's graywall-control: the control service is TypeScript, run through tsx (a dependency).
import { register } from "tsx/esm/api";

register();
const { runCli } = await import("../control/main.ts");
await runCli(process.argv.slice(2));
