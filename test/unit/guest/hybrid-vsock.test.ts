// connectGuestPort against a stand-in for the vsock device's host socket (hybrid vsock:
// "CONNECT <port>\n" -> "OK <n>\n", then the stream).
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { VsockConnectError, connectGuestPort } from '../../../core/guest/hybrid-vsock.ts';
import { Reader, tempDir, until } from './fakes.ts';

const dir = tempDir('berth-hybrid-');
const path = join(dir.path, 'vsock.sock');
let server: Server;
/** The device side of the last connection. */
let device: Reader;

before(async () => {
  server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    socket.once('data', (line: Buffer) => {
      const port = Number(/^CONNECT (\d+)\n/.exec(line.toString())?.[1]);
      if (port === 1) {
        // The answer and the guest's first bytes in one chunk, as an SSH banner can come.
        socket.write('OK 1024\nSSH-2.0-dropbear\r\n');
        device = new Reader(socket);
      } else if (port === 2) {
        socket.write('OK 1025\n');
        device = new Reader(socket);
        socket.end('guest done'); // SHUTDOWN(SEND) from the guest
      } else {
        socket.destroy(); // nothing listens there: RST
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
});
after(async () => {
  await new Promise((resolve) => server.close(resolve));
  dir.remove();
});

describe('connectGuestPort', () => {
  test('bytes right behind "OK" are kept for whoever reads next', async () => {
    const socket = await connectGuestPort(path, 1);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the reader comes later
    const first = await new Promise<string>((resolve) =>
      socket.once('data', (data: Buffer) => resolve(data.toString())),
    );
    assert.equal(first, 'SSH-2.0-dropbear\r\n');
    socket.destroy();
  });

  test('a port nobody listens on: a VsockConnectError at once', async () => {
    await assert.rejects(connectGuestPort(path, 3), (error: Error) => {
      assert.ok(error instanceof VsockConnectError);
      assert.match(error.message, /vsock port 3 via .*: closed before the guest accepted/);
      return true;
    });
    await assert.rejects(connectGuestPort(join(dir.path, 'missing.sock'), 1), /ENOENT/);
  });

  test('allowHalfOpen: after the guest’s EOF the host can still send', async () => {
    const socket = await connectGuestPort(path, 2, 5000, { allowHalfOpen: true });
    const reader = new Reader(socket);
    await until(() => reader.ended, "the guest's EOF");
    assert.equal(reader.text, 'guest done');
    socket.end('host reply');
    await until(() => device.ended, 'the host reply at the guest');
    assert.equal(device.text, 'host reply');
  });
});
