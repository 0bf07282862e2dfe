// berth settings get | set KEY=VALUE... [--apply] | history | rollback REVISION [--apply]
import type { ApiClient } from '../../api/client.ts';
import { ApiError, ErrorCode } from '../../api/errors.ts';
import type { SettingsChange, SettingsCommit, SettingsView } from '../../api/types.ts';
import { FIELD_ALIASES, parseAssignments, SETTINGS_FIELDS } from '../../settings/schema.ts';
import { ensureSupervisor } from '../control-client.ts';
import { printJson, say, UsageError } from '../output.ts';
import type { CommandContext } from './lifecycle.ts';

export interface SettingsArgs {
  action: string | undefined;
  rest: string[];
  apply: boolean;
  message?: string;
  limit?: number;
}

export async function settingsCommand(ctx: CommandContext, args: SettingsArgs): Promise<number> {
  const api = await ensureSupervisor(ctx.paths);
  try {
    return await run(api, ctx, args);
  } finally {
    api.close();
  }
}

async function run(api: ApiClient, { json }: CommandContext, args: SettingsArgs): Promise<number> {
  switch (args.action) {
    case 'get':
    case undefined: {
      const view = await api.call('settings.get');
      if (json) printJson(view);
      else say(describeSettings(view));
      return 0;
    }
    case 'set': {
      if (args.rest.length === 0)
        throw new UsageError('settings set needs KEY=VALUE, e.g. memory=4096');
      const parsed = parseAssignments(args.rest);
      if (!parsed.ok) {
        throw new ApiError(
          ErrorCode.invalidParams,
          parsed.errors.map((e) => e.message).join('; '),
          { errors: parsed.errors },
        );
      }
      const change = await api.call('settings.set', {
        changes: parsed.patch,
        source: 'cli',
        apply: args.apply,
        ...(args.message ? { message: args.message } : {}),
      });
      if (json) printJson(change);
      else say(describeChange(change));
      return 0;
    }
    case 'history': {
      const history = await api.call('settings.history', args.limit ? { limit: args.limit } : {});
      if (json) printJson(history);
      else say(history.map(describeCommit).join('\n'));
      return 0;
    }
    case 'rollback': {
      const [revisionText] = args.rest;
      if (args.rest.length !== 1 || !/^\d+$/.test(revisionText ?? '')) {
        throw new UsageError(
          'settings rollback needs one revision number (see berth settings history)',
        );
      }
      const change = await api.call('settings.rollback', {
        revision: Number(revisionText),
        source: 'cli',
        apply: args.apply,
      });
      if (json) printJson(change);
      else say(describeChange(change));
      return 0;
    }
    default:
      throw new UsageError(
        `unknown settings action ${JSON.stringify(args.action)}; use get, set, history or rollback`,
      );
  }
}

function describeSettings(view: SettingsView): string {
  const { settings, limits } = view;
  const lines = [
    `revision ${view.revision}`,
    `cpus=${settings.cpus}              (1 to ${limits.cpus.max})`,
    `memory=${settings.memoryMiB}         MiB (${limits.memoryMiB.min} to ${limits.memoryMiB.max}, steps of ${limits.memoryMiB.step})`,
    `disk=${settings.diskGiB}              GiB (grow only, up to ${limits.diskGiB.max})`,
    `storage-driver=${settings.storageDriver} (${limits.storageDrivers.join(', ')})`,
  ];
  if (view.pendingRestart.length > 0) {
    lines.push(
      `pending: ${view.pendingRestart.map((f) => FIELD_ALIASES[f]).join(', ')} (berth restart applies)`,
    );
  }
  for (const warning of view.warnings) lines.push(`warning: ${warning}`);
  return lines.join('\n');
}

function describeChange(change: SettingsChange): string {
  if (!change.changed) return `berth: nothing changed (revision ${change.revision})`;
  const diff = change.diff.map((d) => `${FIELD_ALIASES[d.field]} ${d.from} -> ${d.to}`).join(', ');
  let line = `berth: revision ${change.revision}: ${diff}`;
  if (change.applied) line += '; the VM was restarted to apply it';
  else if (change.restartNeeded.length > 0)
    line += '; takes effect at the next start (--apply restarts now)';
  return line;
}

function describeCommit(commit: SettingsCommit): string {
  const values = SETTINGS_FIELDS.map((f) => `${FIELD_ALIASES[f]}=${commit.settings[f]}`).join(' ');
  const by = commit.requestedBy ? ` by ${commit.requestedBy}` : '';
  return `${String(commit.revision).padStart(4)}  ${commit.time}  ${commit.source}${by}  ${commit.message}\n      ${values}`;
}
