/** The `aes` process: quiet tfjs, one-line errors, then the CLI (cli.ts) on the process's arguments. */
import { exitOnUncaught, silenceTfjs } from '@aes/node';
import { runCli } from './cli.js';

exitOnUncaught();
silenceTfjs();
const io = {
  out: (s: string) => void process.stdout.write(s),
  err: (s: string) => void process.stderr.write(s),
  tty: Boolean(process.stdout.isTTY),
};
process.exitCode = await runCli(process.argv.slice(2), io);
