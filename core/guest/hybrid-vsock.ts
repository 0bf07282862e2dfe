// Reaching a guest vsock port from the host through our virtio-vsock device's Unix socket, by the
// hybrid-vsock convention (as Firecracker): connect, send "CONNECT <port>\n", read "OK <n>\n",
// then the socket carries the connection's bytes.
import { connect, type Socket } from 'node:net';

export class VsockConnectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VsockConnectError';
  }
}

export function connectGuestPort(
  udsPath: string,
  port: number,
  timeoutMs = 10_000,
): Promise<Socket> {
  if (!Number.isInteger(port) || port < 0 || port > 0xffffffff) {
    return Promise.reject(new VsockConnectError(`vsock port must be a u32 (got ${port})`));
  }
  return new Promise((resolve, reject) => {
    const socket = connect(udsPath);
    let reply = Buffer.alloc(0);
    const fail = (why: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new VsockConnectError(`vsock port ${port} via ${udsPath}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    socket.once('error', (error) => fail(error.message));
    socket.once('close', () =>
      fail('closed before the guest accepted (is anything listening on that port?)'),
    );
    socket.once('connect', () => socket.write(`CONNECT ${port}\n`));
    const onData = (data: Buffer) => {
      reply = Buffer.concat([reply, data]);
      const newline = reply.indexOf(0x0a);
      if (newline < 0) {
        if (reply.length > 64) fail('malformed answer');
        return;
      }
      const line = reply.subarray(0, newline).toString('latin1');
      if (!/^OK \d+$/.test(line)) return fail(`unexpected answer ${JSON.stringify(line)}`);
      clearTimeout(timer);
      socket.off('data', onData);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      const rest = reply.subarray(newline + 1);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}
