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

export interface GuestPortOptions {
  /**
   * Keep our sending side open after the guest's EOF (the device turns it into SHUTDOWN(SEND)
   * and back), for relays that must pass half-closes on. Off by default: a plain client wants
   * its socket to end when the guest's does.
   */
  allowHalfOpen?: boolean;
}

export function connectGuestPort(
  udsPath: string,
  port: number,
  timeoutMs = 10_000,
  options: GuestPortOptions = {},
): Promise<Socket> {
  if (!Number.isInteger(port) || port < 0 || port > 0xffffffff) {
    return Promise.reject(new VsockConnectError(`vsock port must be a u32 (got ${port})`));
  }
  return new Promise((resolve, reject) => {
    const socket = connect({ path: udsPath, allowHalfOpen: options.allowHalfOpen === true });
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
    // The answer is read with read(), never in flowing mode: bytes the guest sends right behind
    // "OK" (an SSH banner, in the same chunk) go back into the socket's buffer and wait for
    // whoever reads next. (In flowing mode, with our listener gone, they would be emitted to
    // nobody and lost.) Once our 'readable' listener is removed, the stream is back in its
    // initial mode: a 'data' listener, pipe() or resume() starts it.
    const onReadable = () => {
      let data: Buffer | null;
      while ((data = socket.read() as Buffer | null) !== null) {
        reply = Buffer.concat([reply, data]);
        const newline = reply.indexOf(0x0a);
        if (newline < 0) {
          if (reply.length > 64) return fail('malformed answer');
          continue;
        }
        const line = reply.subarray(0, newline).toString('latin1');
        if (!/^OK \d+$/.test(line)) return fail(`unexpected answer ${JSON.stringify(line)}`);
        clearTimeout(timer);
        socket.off('readable', onReadable);
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        const rest = reply.subarray(newline + 1);
        if (rest.length > 0) socket.unshift(rest);
        return resolve(socket);
      }
    };
    socket.on('readable', onReadable);
  });
}
