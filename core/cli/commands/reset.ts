// berth reset [--yes]: reset to factory. Deletes the data disk (everything the VM stored in /var)
// and the current settings; the settings history is kept as a backup file. Asks first on a
// terminal; a script must say --yes.
import { createInterface } from 'node:readline/promises';
import { ensureSupervisor } from '../control-client.ts';
import { printJson, say, UsageError } from '../output.ts';
import { followProgress, type CommandContext } from './lifecycle.ts';

export async function resetCommand(ctx: CommandContext, yes: boolean): Promise<number> {
  if (!yes) {
    if (!process.stdin.isTTY) {
      throw new UsageError('reset deletes the data disk and the settings; add --yes to confirm');
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(
      `Reset ${ctx.paths.home} to factory? This deletes the data disk (all data in the VM's /var)\n` +
        'and resets the settings to their defaults; the settings history is kept in a backup file.\n' +
        'Type "reset" to confirm: ',
    );
    rl.close();
    if (answer.trim() !== 'reset') {
      say('berth: nothing was changed');
      return 1;
    }
  }
  const api = await ensureSupervisor(ctx.paths);
  try {
    if (!ctx.json) await followProgress(api);
    const result = await api.call('reset', { confirm: true, source: 'cli' });
    if (ctx.json) printJson(result);
    else {
      say(`berth: reset to factory; settings history backed up to ${result.backup}`);
      if (result.restarted) say('berth: the VM is running again on a fresh data disk');
    }
    return 0;
  } finally {
    api.close();
  }
}
