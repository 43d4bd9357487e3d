#!/usr/bin/env node
// Entry point: registers tsx so the TypeScript sources run as they are (no build step to go stale),
// then hands over to the CLI. Child runs and pool workers start through this same file.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
