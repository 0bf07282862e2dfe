// What the dashboard's Containers card shows, from the VM's status: nothing unless the VM runs,
// "connecting" until the engine's socket is served, then the socket, the docker command to copy
// and each published port with its link. Apart from the card so Node tests can check it.
import type { VmStatus } from '../../../core/api/types.ts';
import { formatPortMapping, publishedPortUrl } from '../format.ts';

export interface PublishedPortView {
  port: number;
  containerName: string;
  /** http://127.0.0.1:<port>/ */
  url: string;
  /** "8080 → 80/tcp" */
  mapping: string;
}

export type EngineView =
  | { kind: 'hidden' }
  | { kind: 'connecting' }
  | { kind: 'served'; socket: string; command: string; ports: PublishedPortView[] };

export function engineView(status: VmStatus | null | undefined): EngineView {
  if (status?.state !== 'running') return { kind: 'hidden' };
  const engine = status.engine;
  if (!engine) return { kind: 'connecting' };
  return {
    kind: 'served',
    socket: engine.socket,
    command: `docker --context ${engine.context} ps`,
    ports: engine.publishedPorts.map((port) => ({
      port: port.port,
      containerName: port.containerName,
      url: publishedPortUrl(port),
      mapping: formatPortMapping(port),
    })),
  };
}
