// The VM's container engine, as Docker Desktop shows it: where the docker CLI reaches it (the
// socket and the `berth` context) and the containers' published ports, each a link to where it
// answers on this machine. Follows `event.engine`, so a `docker run -p` shows here without a poll.
import { useVm } from '../services.ts';
import { CopyableCommand } from './CopyableCommand.tsx';
import { engineView, type PublishedPortView } from './engine-view.ts';

export function EngineCard() {
  const status = useVm((s) => s.status);
  const view = engineView(status);
  if (view.kind === 'hidden') return null;
  return (
    <section className="panel" aria-labelledby="engine-title" data-testid="engine-card">
      <h2 id="engine-title" className="panel-title">
        Containers
      </h2>
      {view.kind === 'connecting' ? (
        <p className="muted">Connecting to the VM’s docker engine…</p>
      ) : (
        <div className="engine">
          <dl className="facts">
            <div>
              <dt>Docker socket</dt>
              <dd className="mono" data-testid="engine-socket">
                {view.socket}
              </dd>
            </div>
            <div>
              <dt>Docker CLI</dt>
              <dd>
                <CopyableCommand command={view.command} testId="engine-hint" />
              </dd>
            </div>
          </dl>
          <div>
            <h3 className="subsection-title">Published ports</h3>
            {view.ports.length === 0 ? (
              <p className="muted" data-testid="engine-no-ports">
                No published ports
              </p>
            ) : (
              <ul className="port-list">
                {view.ports.map((port) => (
                  <PublishedPortRow key={port.port} port={port} />
                ))}
              </ul>
            )}
          </div>
        </div>
      )}
    </section>
  );
}

function PublishedPortRow({ port }: { port: PublishedPortView }) {
  return (
    <li className="port" data-testid={`published-port-${port.port}`}>
      <span className="port-container">{port.containerName}</span>
      {/* A new window: the desktop app hands it to the user's browser (electron/url-policy.ts). */}
      <a
        className="mono"
        href={port.url}
        target="_blank"
        rel="noopener noreferrer"
        title={`Open ${port.url} in the browser`}
      >
        {port.mapping}
      </a>
    </li>
  );
}
