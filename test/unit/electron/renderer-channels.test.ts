// electron/renderer-channels.ts: one dispatch per renderer, opened on its first message, closed
// when its page goes, failures reported with the renderer's id.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RendererChannels, type RendererDispatch } from '../../../electron/renderer-channels.ts';

class RecordingDispatch implements RendererDispatch {
  readonly handled: string[] = [];
  closed = false;
  constructor(private readonly fail = false) {}
  async handle(text: string): Promise<void> {
    this.handled.push(text);
    if (this.fail) throw new Error(`cannot handle ${text}`);
  }
  close(): void {
    this.closed = true;
  }
}

test('the first message of a renderer opens its dispatch; later ones reuse it', () => {
  const channels = new RendererChannels<RecordingDispatch>();
  const made: RecordingDispatch[] = [];
  const open = () => {
    const dispatch = new RecordingDispatch();
    made.push(dispatch);
    return dispatch;
  };
  channels.deliver(1, 'a', open);
  channels.deliver(1, 'b', open);
  channels.deliver(2, 'c', open);
  assert.equal(made.length, 2);
  assert.deepEqual(made[0]!.handled, ['a', 'b']);
  assert.deepEqual(made[1]!.handled, ['c']);
  assert.equal(channels.size, 2);
});

test('reset closes the dispatch; the next message opens a new one', () => {
  const channels = new RendererChannels<RecordingDispatch>();
  const made: RecordingDispatch[] = [];
  const open = () => {
    const dispatch = new RecordingDispatch();
    made.push(dispatch);
    return dispatch;
  };
  channels.deliver(1, 'before reload', open);
  channels.reset(1);
  assert.equal(made[0]!.closed, true);
  assert.equal(channels.has(1), false);
  channels.reset(1); // twice is harmless
  channels.reset(99); // so is a renderer that never spoke
  channels.deliver(1, 'after reload', open);
  assert.equal(made.length, 2);
  assert.deepEqual(made[1]!.handled, ['after reload']);
  assert.equal(made[1]!.closed, false);
});

test('closeAll closes every dispatch', () => {
  const channels = new RendererChannels<RecordingDispatch>();
  const made = [1, 2, 3].map((id) => {
    const dispatch = new RecordingDispatch();
    channels.deliver(id, 'x', () => dispatch);
    return dispatch;
  });
  channels.closeAll();
  assert.deepEqual(
    made.map((dispatch) => dispatch.closed),
    [true, true, true],
  );
  assert.equal(channels.size, 0);
});

test('a failing handle is reported with the renderer id, not thrown', async () => {
  const errors: [number, string][] = [];
  const channels = new RendererChannels<RecordingDispatch>((id, error) =>
    errors.push([id, (error as Error).message]),
  );
  channels.deliver(5, 'boom', () => new RecordingDispatch(true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(errors, [[5, 'cannot handle boom']]);
});
