// The `berth` command. Today: `berth start`. The supervisor issue adds stop, status, console,
// exec, settings, logs and reset, all speaking the control socket's API.
import { start } from './start.ts';

const USAGE = 'usage: berth start';

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'start' && rest.length === 0) return start();
  console.error(
    command ? `berth: unknown command or argument: ${argv.join(' ')}\n${USAGE}` : USAGE,
  );
  return 2;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error(`berth: ${(error as Error).message}`);
  process.exitCode = 1;
}
