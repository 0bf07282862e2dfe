// A shell on this machine, for the docker CLI and friends. Only the desktop app and the dashboard
// serve it; elsewhere the API answers "method not found" and this says where to find it.
import { useEffect, useMemo, useRef } from 'react';
import { useLink, useServices } from '../services.ts';
import { hostTerminalChannel } from './pty-channel.ts';
import { TerminalSurface } from './TerminalSurface.tsx';
import { useTerminalSession } from './useTerminalSession.ts';

export function HostTerminal({ active }: { active: boolean }) {
  const { api } = useServices();
  const container = useRef<HTMLDivElement>(null);
  const channel = useMemo(() => hostTerminalChannel(api), [api]);
  const { session, term, state } = useTerminalSession(container, channel);
  const connected = useLink((s) => s.link.state === 'connected');
  /** Whether our side ended the session (a dropped connection), so it comes back by itself. */
  const droppedByUs = useRef(false);

  useEffect(() => {
    if (!session) return;
    if (!connected) {
      if (session.state === 'open' || session.state === 'opening') {
        droppedByUs.current = true;
        session.end('[disconnected from Berth: the terminal reconnects with it]');
      }
    } else if (!active) {
      return; // opened when first shown
    } else if (session.state === 'idle' || (session.state === 'ended' && droppedByUs.current)) {
      droppedByUs.current = false;
      void session.open();
    }
  }, [session, active, connected]);

  useEffect(() => {
    if (active) term?.focus();
  }, [active, term]);

  return (
    <>
      {state === 'unavailable' && (
        <p className="callout" role="status">
          The host terminal is available in the desktop app and the dashboard.
        </p>
      )}
      <div hidden={state === 'unavailable'} className="terminal-holder">
        <TerminalSurface
          containerRef={container}
          term={term}
          label="Host terminal"
          testId="host-terminal"
        />
      </div>
    </>
  );
}
