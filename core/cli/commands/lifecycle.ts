// berth start | stop | restart | status: the VM's lifecycle through the supervisor.
import type { ApiClient } from '../../api/client.ts';
import type { VmStatus } from '../../api/types.ts';
import type { dataPaths } from '../../paths.ts';
import { connectControl, ensureSupervisor } from '../control-client.ts';
import { describeStatus, printJson, say } from '../output.ts';

type Paths = ReturnType<typeof dataPaths>;
export interface CommandContext {
  paths: Paths;
  json: boolean;
}

export async function startCommand({ paths, json }: CommandContext): Promise<number> {
  const api = await ensureSupervisor(paths);
  try {
    const began = performance.now();
    if (!json) await followProgress(api);
    const status = await api.call('start');
    if (json) printJson(status);
    else
      say(
        `berth: the VM is running (${Math.round(performance.now() - began)} ms; ${status.backend}: ${status.backendReason})`,
      );
    return 0;
  } finally {
    api.close();
  }
}

export async function stopCommand(
  { paths, json }: CommandContext,
  deadlineMs?: number,
): Promise<number> {
  const api = await connectControl(paths.controlSocket);
  if (!api) {
    if (json) printJson({ state: 'stopped', dataDirectory: paths.home });
    else say('berth: the VM is not running');
    return 0;
  }
  try {
    const status = await api.call('stop', deadlineMs === undefined ? {} : { deadlineMs });
    if (json) printJson(status);
    else if (status.lastStop?.message) say(`berth: ${status.lastStop.message}`);
    else if (status.lastStop) say(`berth: the VM stopped (${status.lastStop.durationMs} ms)`);
    else say('berth: the VM is stopped');
    return 0;
  } finally {
    api.close();
  }
}

export async function restartCommand(
  { paths, json }: CommandContext,
  deadlineMs?: number,
): Promise<number> {
  const api = await ensureSupervisor(paths);
  try {
    if (!json) await followProgress(api);
    const status = await api.call('restart', deadlineMs === undefined ? {} : { deadlineMs });
    if (json) printJson(status);
    else say(`berth: the VM is running again (${status.backend})`);
    return 0;
  } finally {
    api.close();
  }
}

export async function statusCommand({ paths, json }: CommandContext): Promise<number> {
  const api = await connectControl(paths.controlSocket);
  let status: VmStatus;
  if (api) {
    try {
      status = await api.call('status');
    } finally {
      api.close();
    }
  } else {
    // No supervisor: nothing can be running for this data directory.
    status = { state: 'stopped', since: Date.now(), pendingRestart: [], dataDirectory: paths.home };
  }
  if (json) printJson(status);
  else say(describeStatus(status));
  return status.state === 'error' ? 1 : 0;
}

/** Prints each long step once as it is reached. */
export async function followProgress(api: ApiClient): Promise<void> {
  api.on('progress', ({ step, percent }) => say(`berth: ${step} (${percent}%)`));
  api.on('state', ({ message }) => {
    if (message) say(`berth: ${message}`);
  });
  await api.call('subscribe', { events: ['progress', 'state'] });
}
