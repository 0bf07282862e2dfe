// What the user's buttons do: each calls the API, keeps the stores honest about the call in flight,
// and turns a failure into words where the user looks (a banner, a field, a notice).
import { ApiError } from '../../../core/api/errors.ts';
import type {
  ResetResult,
  SettingsChange,
  SettingsField,
  VmState,
} from '../../../core/api/types.ts';
import type { Api } from '../api/connection.ts';
import { listFields } from '../format.ts';
import { notify, type Stores, type VmAction } from './stores.ts';
import { applyStatus } from './vm-reducers.ts';

export type SaveOutcome =
  | { ok: true; change: SettingsChange }
  /** `fields` maps a settings field to the schema's message for it; `message` is the whole error. */
  | { ok: false; fields: Record<string, string>; message: string };

export interface Actions {
  lifecycle(action: 'start' | 'stop' | 'restart'): Promise<void>;
  saveSettings(changes: Record<string, unknown>, apply: boolean): Promise<SaveOutcome>;
  rollback(revision: number): Promise<void>;
  reset(): Promise<ResetResult | null>;
}

export function createActions(api: Api, stores: Stores): Actions {
  const begin = (action: VmAction) => stores.vm.setState({ action, failure: null });
  const fail = (action: VmAction, error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    const serialTail =
      error instanceof ApiError && typeof error.data?.serialTail === 'string'
        ? error.data.serialTail
        : undefined;
    stores.vm.setState({ failure: { action, message, ...(serialTail ? { serialTail } : {}) } });
  };
  const vmState = (): VmState | undefined => stores.vm.getState().status?.state;

  return {
    async lifecycle(action) {
      begin(action);
      try {
        const status = await api.call(action, {});
        stores.vm.setState((s) => ({ status: applyStatus(s.status, status) }));
      } catch (error) {
        fail(action, error);
      } finally {
        stores.vm.setState({ action: null });
      }
    },

    async saveSettings(changes, apply) {
      if (apply) begin('restart');
      try {
        const change = await api.call('settings.set', { changes, source: 'gui', apply });
        notify(stores, 'info', describeChange(change, vmState()));
        return { ok: true, change };
      } catch (error) {
        const fields: Record<string, string> = {};
        if (error instanceof ApiError) {
          for (const { field, message } of error.data?.errors ?? []) fields[field] = message;
        }
        const message = error instanceof Error ? error.message : String(error);
        if (Object.keys(fields).length === 0) notify(stores, 'error', message);
        return { ok: false, fields, message };
      } finally {
        if (apply) stores.vm.setState({ action: null });
      }
    },

    async rollback(revision) {
      try {
        const change = await api.call('settings.rollback', {
          revision,
          source: 'gui',
          apply: false,
        });
        const head = change.changed
          ? `Revision ${revision}'s settings are now revision ${change.revision}.`
          : `The settings already match revision ${revision}.`;
        notify(stores, 'info', `${head} ${restartHint(change.restartNeeded, vmState())}`.trim());
      } catch (error) {
        notify(stores, 'error', `Could not roll back: ${(error as Error).message}`);
      }
    },

    async reset() {
      begin('reset');
      try {
        const result = await api.call('reset', { confirm: true, source: 'gui' });
        notify(
          stores,
          'info',
          `Reset to factory done. The settings history was saved to ${result.backup}.`,
        );
        return result;
      } catch (error) {
        fail('reset', error);
        notify(stores, 'error', `Reset failed: ${(error as Error).message}`);
        return null;
      } finally {
        stores.vm.setState((s) => {
          const progress = { ...s.progress };
          delete progress.reset;
          return { action: null, progress };
        });
      }
    },
  };
}

/** "Saved as revision 4. Restart the VM to apply CPUs and memory." */
export function describeChange(change: SettingsChange, state: VmState | undefined): string {
  if (!change.changed) return 'Nothing changed: the settings already have these values.';
  const head = `Saved as revision ${change.revision}.`;
  if (change.applied) return `${head} The VM restarted with the new settings.`;
  return `${head} ${restartHint(change.restartNeeded, state)}`.trim();
}

function restartHint(fields: readonly SettingsField[], state: VmState | undefined): string {
  if (fields.length === 0) return '';
  if (state === 'running' || state === 'starting') {
    return `Restart the VM to apply the new ${listFields(fields)}.`;
  }
  return 'The change applies when the VM next starts.';
}
