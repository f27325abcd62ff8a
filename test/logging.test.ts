import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createPinoLogger, isoTimeStamps, LOG_BATCH_BYTES, LOG_FLUSH_MS, stdoutDestination } from '../src/http/logging.ts';
import { runProgram } from './helpers/program.ts';

function collector() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe('the log', () => {
  it('writes JSON lines with level and time, and redacts secret-bearing fields', () => {
    const { lines, stream } = collector();
    const log = createPinoLogger('info', stream);
    log({ level: 'warn', event: 'oops', password: 'hunter2hunter2', client_secret: 's3cr3t', request: { authorization: 'Bearer abc' }, clientId: 'app' });
    log({ level: 'debug', event: 'hidden' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', event: 'oops', password: '[redacted]', client_secret: '[redacted]', request: { authorization: '[redacted]' }, clientId: 'app' });
    expect(typeof lines[0]!.time).toBe('string');
    expect(JSON.stringify(lines)).not.toMatch(/hunter2|s3cr3t|Bearer/);
  });

  it('writes the request line as pino writes its other lines, one line whatever the path holds', () => {
    const raw: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        raw.push(chunk.toString('utf8'));
        done();
      },
    });
    const log = createPinoLogger('info', stream);
    const hostile = '/a"b\\c\n{"level":"error"}\u2028\u0000\ud800é';
    log({ level: 'info', event: 'request', requestId: 'r-12345678', method: 'POST', path: '/token', status: 200, ms: 1.5 });
    log({ level: 'info', event: 'request', requestId: 'r-87654321', method: 'GET', path: hostile, status: 404, ms: 0 });
    log({ level: 'info', event: 'other', requestId: 'r-12345678' });
    const text = raw.join('');
    const lines = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toEqual({ level: 'info', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), event: 'request', requestId: 'r-12345678', method: 'POST', path: '/token', status: 200, ms: 1.5 });
    expect(Object.keys(lines[0]!)).toEqual(['level', 'time', 'event', 'requestId', 'method', 'path', 'status', 'ms']);
    // A path cannot end the line early or forge another.
    expect(lines[1]).toMatchObject({ event: 'request', path: hostile, status: 404 });
    // Same leading fields, in the same order, as a line pino wrote.
    expect(Object.keys(lines[2]!)).toEqual(['level', 'time', 'event', 'requestId']);
    expect(Math.abs(Date.parse(lines[2]!.time as string) - Date.parse(lines[0]!.time as string))).toBeLessThan(1000);
  });

  it('stamps times as toISOString does, within a second and across seconds, forwards and back', () => {
    const stamp = isoTimeStamps();
    const second = Date.UTC(2026, 10, 28, 23, 59, 59);
    const times = [second, second + 7, second + 42, second + 999, second + 1000, second + 1001, second + 5, 0, 999, Date.UTC(1999, 11, 31, 23, 59, 59, 990)];
    for (const time of times) expect(stamp(time), String(time)).toBe(new Date(time).toISOString());
  });

  it('writes no request lines below info', () => {
    const { lines, stream } = collector();
    const log = createPinoLogger('warn', stream);
    log({ level: 'info', event: 'request', requestId: 'r-12345678', method: 'POST', path: '/token', status: 200, ms: 1.5 });
    log({ level: 'warn', event: 'kept' });
    expect(lines).toEqual([expect.objectContaining({ event: 'kept' })]);
  });

  it('holds a few lines back and writes them together within LOG_FLUSH_MS', async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-log-'));
    const file = path.join(folder, 'out.log');
    const destination = stdoutDestination(1024 * 1024, fs.openSync(file, 'w'));
    try {
      const log = createPinoLogger('info', destination);
      const line = { level: 'info', event: 'request', requestId: 'r-12345678', method: 'POST', path: '/token', status: 200, ms: 1.5 } as const;
      for (let i = 0; i < 3; i++) log(line);
      // Far fewer than a batch: nothing is written before LOG_FLUSH_MS after the first of them.
      expect(3 * JSON.stringify(line).length).toBeLessThan(LOG_BATCH_BYTES);
      await new Promise((resolve) => setTimeout(resolve, LOG_FLUSH_MS / 4));
      expect(fs.readFileSync(file, 'utf8')).toBe('');
      let written = '';
      for (let waited = 0; waited < 5000 && written.split('\n').length < 4; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        written = fs.readFileSync(file, 'utf8');
      }
      expect(written.trim().split('\n').map((l) => (JSON.parse(l) as { requestId: string }).requestId)).toEqual(['r-12345678', 'r-12345678', 'r-12345678']);
    } finally {
      await new Promise((resolve) => destination.once('close', resolve).end());
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it('stops writing once it holds nothing, as in an idle process', async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-log-'));
    const destination = stdoutDestination(1024 * 1024, fs.openSync(path.join(folder, 'out.log'), 'w'));
    try {
      let writes = 0;
      destination.on('write', () => writes++);
      createPinoLogger('info', destination)({ level: 'info', event: 'started' });
      for (let waited = 0; waited < 5000 && writes === 0; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      // The line, and at most one flush after it that finds nothing left.
      await new Promise((resolve) => setTimeout(resolve, 3 * LOG_FLUSH_MS));
      const settled = writes;
      expect(settled).toBeLessThanOrEqual(2);
      await new Promise((resolve) => setTimeout(resolve, 5 * LOG_FLUSH_MS));
      expect(writes).toBe(settled);
    } finally {
      await new Promise((resolve) => destination.once('close', resolve).end());
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it('writes a line logged while a write is held up, once that write is through', async () => {
    // A pipe nobody reads yet: its writes block once it holds 64 KiB, as a stalled stdout's do.
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-log-'));
    try {
      const fifo = path.join(folder, 'out');
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      const writeEnd = fs.openSync(fifo, fs.constants.O_RDWR);
      const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const destination = stdoutDestination(1024 * 1024, writeEnd);
      try {
        const log = createPinoLogger('info', destination);
        for (let i = 0; i < 200; i++) log({ level: 'info', event: 'filler', text: 'x'.repeat(1000) });
        await new Promise((resolve) => setTimeout(resolve, 2 * LOG_FLUSH_MS));
        log({ level: 'info', event: 'last' });
        // The flush this line asks for comes while the pipe is still full.
        await new Promise((resolve) => setTimeout(resolve, 3 * LOG_FLUSH_MS));
        let read = '';
        const chunk = Buffer.alloc(65536);
        for (let waited = 0; waited < 5000 && !read.includes('"event":"last"'); waited += 10) {
          try {
            for (let n; (n = fs.readSync(readEnd, chunk)) > 0; ) read += chunk.toString('utf8', 0, n);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
          }
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        expect(read.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { event: string }).event).slice(-2)).toEqual(['filler', 'last']);
      } finally {
        await new Promise((resolve) => destination.once('close', resolve).end());
        fs.closeSync(readEnd);
      }
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it('writes the lines it holds when the process exits', () => {
    const result = runProgram([
      "const { createPinoLogger, stdoutDestination } = await import('./src/http/logging.ts');",
      "const log = createPinoLogger('info', stdoutDestination(1024 * 1024));",
      "log({ level: 'error', event: 'last_words' });",
      'process.exit(3);',
    ]);
    expect(result.status, result.stderr).toBe(3);
    expect(JSON.parse(result.stdout)).toMatchObject({ level: 'error', event: 'last_words' });
  });
});
