import { strict as assert } from 'node:assert';
import { Writable } from 'node:stream';
import { mock, test } from 'node:test';
import { createProgress, formatDuration } from './progress.js';

/** A non-TTY stream that keeps what was written, so the plain-line reporter is chosen. */
function sink(): { stream: NodeJS.WriteStream; lines: string[] } {
  const lines: string[] = [];
  // A Writable is not a tty.WriteStream; the reporter only writes and reads isTTY (undefined here).
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  return { stream, lines };
}

test('formatDuration: seconds, minutes, hours; unknown as ?', () => {
  assert.equal(formatDuration(42.4), '42s');
  assert.equal(formatDuration(125), '2m05s');
  assert.equal(formatDuration(3 * 3600 + 7 * 60), '3h07m');
  assert.equal(formatDuration(NaN), '?');
});

test('plain-line ETA of a resumed task counts only the steps done in this process', () => {
  mock.timers.enable({ apis: ['Date'], now: 0 });
  try {
    const { stream, lines } = sink();
    const p = createProgress(stream);
    p.start('vae', 'vae');
    // Resumed at step 2800 of 3000; then 1 step per second.
    p.update('vae', 2801, 3000);
    mock.timers.tick(40_000);
    p.update('vae', 2841, 3000);
    const last = lines.at(-1) ?? '';
    assert.match(last, /vae: 2841\/3000 \(94%\) elapsed 40s eta 2m39s/, last);
  } finally {
    mock.timers.reset();
  }
});

test('plain-line ETA from zero: rate measured from the first update', () => {
  mock.timers.enable({ apis: ['Date'], now: 0 });
  try {
    const { stream, lines } = sink();
    const p = createProgress(stream);
    p.start('t', 't');
    p.update('t', 0, 100);
    mock.timers.tick(50_000);
    p.update('t', 25, 100);
    assert.match(lines.at(-1) ?? '', /t: 25\/100 \(25%\) elapsed 50s eta 2m30s/);
    mock.timers.tick(150_000);
    p.update('t', 100, 100);
    assert.match(lines.at(-1) ?? '', /eta 0s/);
  } finally {
    mock.timers.reset();
  }
});
