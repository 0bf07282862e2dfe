// The words of the app's dialogs, and when each is shown. main.ts hands these to
// dialog.showMessageBox; keeping them here (no electron import) lets the tests read them.
import type { VmState } from '../core/api/types.ts';

/** The options of dialog.showMessageBox that Berth uses. */
export interface MessageBoxModel {
  type: 'none' | 'info' | 'error' | 'question' | 'warning';
  title: string;
  message: string;
  detail: string;
  buttons: string[];
  defaultId: number;
  cancelId: number;
}

/**
 * Whether quitting needs the user's word: only while a VM runs or boots, since quitting stops it
 * (the VM is a child of the app, so there is no "leave it running"). A VM already stopping is
 * simply waited for.
 */
export function quitNeedsConfirmation(state: VmState): boolean {
  return state === 'running' || state === 'starting';
}

export const QUIT_BUTTON = 0;

export function quitDialog(state: VmState): MessageBoxModel {
  return {
    type: 'question',
    title: 'Quit Berth',
    message: `The VM is ${state}. Stop it and quit?`,
    detail:
      'Berth shuts the VM down gracefully (its containers and shells end) before it quits. ' +
      'The VM cannot keep running without the app.',
    buttons: ['Stop VM and quit', 'Cancel'],
    defaultId: QUIT_BUTTON,
    cancelId: 1,
  };
}

/** Another process (the headless `berth host`, or another Berth) holds the data directory. */
export function dataDirLockedDialog(error: { home: string; ownerPid: number }): MessageBoxModel {
  return {
    type: 'error',
    title: 'Berth is already running',
    message: 'Another Berth is running this VM.',
    detail:
      `The data directory ${error.home} is in use by process ${error.ownerPid} ` +
      '(a `berth host` in a terminal, or Berth started by another user session). ' +
      'Stop it (`berth stop`, then end that process) and open Berth again.',
    buttons: ['Quit'],
    defaultId: 0,
    cancelId: 0,
  };
}

/** The supervisor could not be opened for any other reason. */
export function openFailedDialog(message: string): MessageBoxModel {
  return {
    type: 'error',
    title: 'Berth cannot start',
    message: 'Berth could not open its data directory.',
    detail: message,
    buttons: ['Quit'],
    defaultId: 0,
    cancelId: 0,
  };
}
