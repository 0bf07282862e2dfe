// berth console: this terminal attached to a root shell in the VM (a pty of this terminal's size,
// resized with it), raw mode, until the shell exits or the user types the escape key (Ctrl-]),
// which detaches and leaves the VM running. Without a terminal (a pipe) it still works, so
// scripts and tests can drive it; stdin's end closes the shell's input.
import { connectForRunningVm } from '../control-client.ts';
import { say } from '../output.ts';
import type { CommandContext } from './lifecycle.ts';
import { pipeSession } from './session-pipe.ts';

const DETACH_BYTE = 0x1d; // Ctrl-]

export async function consoleCommand({ paths }: CommandContext): Promise<number> {
  const api = await connectForRunningVm(paths.controlSocket);
  if (!api) return 1;
  const stdin = process.stdin;
  const tty = stdin.isTTY === true && process.stdout.isTTY === true;
  const size = () => ({ cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 });
  try {
    const { id } = await api.call('session.open', {
      pty: { ...size(), term: process.env.TERM || 'xterm-256color' },
    });
    if (tty) {
      say('berth: console attached; Ctrl-] detaches (the VM keeps running)\r');
      stdin.setRawMode(true);
    }
    const onResize = () => void api.call('session.resize', { id, ...size() }).catch(() => {});
    process.stdout.on('resize', onResize);
    try {
      const result = await pipeSession(api, id, { detachByte: DETACH_BYTE });
      if (result.detached) say('\r\nberth: detached; the VM is still running');
      return result.code;
    } finally {
      process.stdout.off('resize', onResize);
      if (tty) stdin.setRawMode(false);
    }
  } finally {
    api.close();
  }
}
