// The dashboard in browser mode: the built renderer over HTTP and the API over a WebSocket
// (/api), on 127.0.0.1 at a random port, for when the desktop app (Electron) is not there. The
// renderer runs unchanged; where Electron gives it IPC, here it gets the same JSON-RPC messages
// over the WebSocket. Access needs the token in the printed URL (see access.ts for why).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_MESSAGE_BYTES } from '../api/jsonrpc.ts';
import { HostTerminals } from '../host-terminal/host-terminals.ts';
import { buildPaths } from '../paths.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';
import { DashboardAccess, newToken, type Refusal } from './access.ts';
import { send, StaticFiles } from './static-files.ts';
import { serveWebSocket, type TerminalsFactory } from './websocket-client.ts';

/** Where scripts/build-renderer.mjs puts the renderer. */
export const RENDERER_BUILD_DIR = join(buildPaths.root, 'renderer');
export const API_PATH = '/api';
/** A closing page gets this long to answer the close frame before its socket is cut. */
const CLOSE_GRACE_MS = 1000;

export interface DashboardOptions {
  /** The built renderer (default build/renderer); tests give a directory of their own. */
  root?: string;
  /** Host terminals for each page; null serves none (default: node-pty shells). */
  terminals?: TerminalsFactory | null;
  /** What `dashboard.open` answers on the dashboard's own WebSocket (default: this URL). */
  dashboard?: () => Promise<{ url: string }>;
  /** Refused WebSocket upgrades are logged, since a page cannot show why its socket failed. */
  log?: (line: string) => void;
}

export class DashboardServer {
  readonly url: string;
  private readonly clients = new Set<WebSocket>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    perMessageDeflate: false, // loopback: compression would only cost CPU
  });
  private readonly access: DashboardAccess;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly token: string,
    private readonly files: StaticFiles,
  ) {
    this.url = `http://127.0.0.1:${port}/?token=${token}`;
    this.access = new DashboardAccess(token, port);
  }

  static async start(
    supervisor: Supervisor,
    options: DashboardOptions = {},
  ): Promise<DashboardServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const dashboard = new DashboardServer(
      server,
      port,
      newToken(),
      new StaticFiles(options.root ?? RENDERER_BUILD_DIR),
    );
    const terminals =
      options.terminals === undefined
        ? (sink: Parameters<TerminalsFactory>[0], flow: Parameters<TerminalsFactory>[1]) =>
            new HostTerminals(sink, flow)
        : options.terminals;
    const capabilities = {
      terminals,
      dashboard: options.dashboard ?? (() => Promise.resolve({ url: dashboard.url })),
    };
    const log = options.log ?? (() => {});
    server.on('request', (request, response) => {
      // A request must never take the host (and the VM) down, whatever goes wrong serving it.
      dashboard.onRequest(request, response).catch((error: Error) => {
        log(`dashboard: a request failed: ${error.message}`);
        if (!response.headersSent) response.writeHead(500).end();
        else response.destroy();
      });
    });
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {}); // a peer gone mid-handshake must not take the host down
      const refusal = dashboard.checkUpgrade(request);
      if (refusal) {
        log(`dashboard: refused a WebSocket (${refusal.status}): ${refusal.text}`);
        refuseUpgrade(socket, refusal);
        return;
      }
      dashboard.wss.handleUpgrade(request, socket, head, (ws) => {
        if (dashboard.closing) return void ws.terminate();
        dashboard.clients.add(ws);
        ws.on('close', () => dashboard.clients.delete(ws));
        serveWebSocket(ws, supervisor, capabilities);
      });
    });
    return dashboard;
  }

  /** Pages connected now (the background host does not exit while any is). */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Closes every page's WebSocket (code 1001, "going away") and stops listening. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = [...this.clients].map(
        (ws) =>
          new Promise<void>((resolve) => {
            ws.once('close', () => resolve());
            ws.close(1001, 'the Berth host is shutting down');
            setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
          }),
      );
      await Promise.all(closed);
      this.wss.close();
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeAllConnections(); // idle keep-alive connections would hold close() open
      await stopped;
    })();
    return this.closing;
  }

  private async onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const headers = this.files.securityHeaders();
    const url = parseUrl(request.url);
    if (!url) {
      send(response, 400, 'text/plain; charset=utf-8', 'bad request\n', headers);
      return;
    }
    const page = url.pathname === '/' || url.pathname === '/index.html';
    const refusal = this.access.check(request, url, page);
    if (refusal) {
      send(response, refusal.status, 'text/plain; charset=utf-8', `${refusal.text}\n`, headers);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(response, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n', {
        ...headers,
        Allow: 'GET, HEAD',
      });
      return;
    }
    try {
      await this.files.serve(url.pathname, request.method, response);
    } catch (error) {
      if (!response.headersSent) {
        send(response, 500, 'text/plain; charset=utf-8', `${(error as Error).message}\n`, headers);
      } else response.destroy();
    }
  }

  private checkUpgrade(request: IncomingMessage): Refusal | null {
    const url = parseUrl(request.url);
    if (!url || url.pathname !== API_PATH) return { status: 403, text: `not ${API_PATH}` };
    return this.access.check(request, url) ?? this.access.checkOrigin(request);
  }
}

/** The request target as a URL; its path is normalized (`..` resolved, even as %2e%2e). */
function parseUrl(target: string | undefined): URL | null {
  if (!target?.startsWith('/')) return null;
  try {
    return new URL(target, 'http://127.0.0.1');
  } catch {
    return null;
  }
}

function refuseUpgrade(socket: Duplex, { status, text }: Refusal): void {
  const reason = status === 401 ? 'Unauthorized' : 'Forbidden';
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
