// A shell in the VM. It follows the VM: it connects when the VM runs, says when it stops, and
// connects again by itself after a restart (or on Enter, after the shell exited).
import { useEffect, useMemo, useRef } from 'react';
import type { VmState } from '../../../core/api/types.ts';
import { useLink, useServices, useVm } from '../services.ts';
import { guestShellChannel } from './pty-channel.ts';
import { TerminalSurface } from './TerminalSurface.tsx';
import { useTerminalSession } from './useTerminalSession.ts';

/** What the console says while the VM is not running. */
const WAITING: Record<Exclude<VmState, 'running'>, string> = {
  starting: '[the VM is starting: the console connects when it runs]',
  stopping: '[the VM is stopping]',
  stopped: '[the VM is stopped: start it from the Dashboard and the console connects]',
  error:
    '[the VM stopped with an error: see the Dashboard; the console connects when it runs again]',
};

export function VmConsole({ active }: { active: boolean }) {
  const { api } = useServices();
  const container = useRef<HTMLDivElement>(null);
  const channel = useMemo(() => guestShellChannel(api), [api]);
  const { session, term } = useTerminalSession(container, channel);
  const vmState = useVm((s) => s.status?.state);
  const connected = useLink((s) => s.link.state === 'connected');

  useEffect(() => {
    if (!session || vmState === undefined) return;
    if (!connected) session.end('[disconnected from Berth: the console reconnects with it]');
    else if (vmState === 'running') void session.open();
    else session.end(WAITING[vmState]);
  }, [session, vmState, connected]);

  useEffect(() => {
    if (active) term?.focus();
  }, [active, term]);

  return (
    <TerminalSurface containerRef={container} term={term} label="VM console" testId="vm-console" />
  );
}
