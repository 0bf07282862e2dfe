// berth exec -- CMD [ARG...]: runs a command in the VM as root; its stdout, stderr and exit code
// become ours. Arguments are quoted for the guest's shell, so they arrive exactly as given.
import { connectForRunningVm } from '../control-client.ts';
import { UsageError } from '../output.ts';
import type { CommandContext } from './lifecycle.ts';
import { pipeSession } from './session-pipe.ts';

export async function execCommand({ paths }: CommandContext, argv: string[]): Promise<number> {
  if (argv.length === 0) throw new UsageError('exec needs a command: berth exec -- uname -a');
  const api = await connectForRunningVm(paths.controlSocket);
  if (!api) return 1;
  try {
    const { id } = await api.call('session.open', { command: argv.map(shellQuote).join(' ') });
    // A terminal's stdin stays ours: the command gets an empty stdin, as `ssh host cmd < /dev/null`.
    const forwardStdin = !process.stdin.isTTY;
    if (!forwardStdin) await api.call('session.eof', { id });
    const result = await pipeSession(api, id, { forwardStdin });
    return result.code;
  } finally {
    api.close();
  }
}

/** POSIX shell quoting: safe words as they are, anything else in single quotes. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
